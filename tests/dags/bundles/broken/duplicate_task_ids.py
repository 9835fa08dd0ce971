import pendulum

from tradewind.sdk import DAG
from tradewind.sdk.operators.empty import EmptyOperator

with DAG(dag_id="duplicate_task_ids", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):
    EmptyOperator(task_id="same")
    EmptyOperator(task_id="same")
