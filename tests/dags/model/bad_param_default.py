"""A scheduled DAG whose param default does not match its schema."""

from datetime import datetime

from tradewind.sdk import DAG, Param
from tradewind.sdk.operators.empty import EmptyOperator

with DAG(
    "bad_params",
    start_date=datetime(2024, 1, 1),
    schedule="@daily",
    params={"n": Param("ten", type="integer")},
):
    EmptyOperator(task_id="t")
