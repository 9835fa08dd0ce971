"""A DAG whose dependencies loop."""

from datetime import datetime

from tradewind.sdk import DAG
from tradewind.sdk.operators.empty import EmptyOperator

with DAG("cyclic", start_date=datetime(2024, 1, 1), schedule=None):
    first = EmptyOperator(task_id="first")
    second = EmptyOperator(task_id="second")
    third = EmptyOperator(task_id="third")
    first >> second >> third >> first
