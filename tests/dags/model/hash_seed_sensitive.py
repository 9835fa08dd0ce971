"""Built by iterating a set: task creation order changes with the hash seed, the serialization must not."""

from datetime import datetime

from tradewind.sdk import DAG
from tradewind.sdk.operators.empty import EmptyOperator

with DAG("unordered", start_date=datetime(2024, 1, 1), schedule="@daily", tags={"x", "y", "z"}) as dag:
    root = EmptyOperator(task_id="root")
    for name in {"delta", "alpha", "charlie", "bravo", "echo", "foxtrot"}:
        root >> EmptyOperator(task_id=name, params={"n": {"k", "j", "i"} and 1}, email={"a@x", "b@x"})
