"""A good DAG next to the broken files: it must parse whatever they do."""

import pendulum

from tradewind.sdk import DAG
from tradewind.sdk.operators.empty import EmptyOperator

with DAG(dag_id="good", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
