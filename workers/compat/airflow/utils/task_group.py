"""`airflow.utils.task_group`."""

from __future__ import annotations

from tradewind.sdk.taskgroup import (
    MappedTaskGroup,
    TaskGroup,
    TaskGroupContext,
    task_group,
)

__all__ = [
    "MappedTaskGroup",
    "TaskGroup",
    "TaskGroupContext",
    "task_group",
]
