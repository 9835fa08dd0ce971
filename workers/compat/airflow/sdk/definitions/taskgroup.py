"""`airflow.sdk.definitions.taskgroup`."""

from __future__ import annotations

from tradewind.sdk.taskgroup import (
    MappedTaskGroup,
    TaskGroup,
    task_group,
)

__all__ = [
    "MappedTaskGroup",
    "TaskGroup",
    "task_group",
]
