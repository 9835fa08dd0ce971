"""`airflow.models.taskinstance` (the running task instance's type)."""

from __future__ import annotations

from tradewind.sdk.execution import (
    RuntimeTaskInstance as TaskInstance,
)

__all__ = [
    "TaskInstance",
]
