"""DAGs found by auto-registration only (no global name), and one that opts out."""

from datetime import datetime

from tradewind.sdk import DAG, dag
from tradewind.sdk.operators.empty import EmptyOperator

with DAG("context_only", start_date=datetime(2024, 1, 1), schedule=None):
    EmptyOperator(task_id="t")

with DAG("not_registered", start_date=datetime(2024, 1, 1), schedule=None, auto_register=False):
    EmptyOperator(task_id="t")


@dag(start_date=datetime(2024, 1, 1), schedule="@hourly")
def decorated(limit: int = 5):
    EmptyOperator(task_id="t")


decorated()


def build(dag_id):
    with DAG(dag_id, start_date=datetime(2024, 1, 1), schedule=None) as built:
        EmptyOperator(task_id="t")
    return built


build("from_helper")
