"""`airflow.sdk.bases.decorator`."""

from __future__ import annotations

from tradewind.sdk.decorators import (
    DecoratedOperator,
    get_unique_task_id,
    task_decorator_factory,
)

__all__ = [
    "DecoratedOperator",
    "get_unique_task_id",
    "task_decorator_factory",
]
