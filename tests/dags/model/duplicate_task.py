"""A DAG that uses one task id twice."""

from datetime import datetime

from tradewind.sdk import DAG
from tradewind.sdk.operators.empty import EmptyOperator

with DAG("duplicated", start_date=datetime(2024, 1, 1), schedule=None):
    EmptyOperator(task_id="same")
    EmptyOperator(task_id="same")
