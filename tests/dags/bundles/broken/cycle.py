import pendulum

from tradewind.sdk import DAG
from tradewind.sdk.operators.empty import EmptyOperator

with DAG(dag_id="cycle", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):
    a = EmptyOperator(task_id="a")
    b = EmptyOperator(task_id="b")
    c = EmptyOperator(task_id="c")
    a >> b >> c >> a
