"""`airflow.decorators`: TaskFlow decorators (Airflow 2 DAG semantics for @dag)."""

from __future__ import annotations

from tradewind.sdk.dag import (
    airflow2_dag as dag,
)
from tradewind.sdk.decorators import (
    setup,
    task,
    teardown,
)
from tradewind.sdk.taskgroup import (
    task_group,
)

__all__ = [
    "dag",
    "setup",
    "task",
    "task_group",
    "teardown",
]
