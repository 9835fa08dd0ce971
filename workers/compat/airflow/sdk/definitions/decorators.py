"""`airflow.sdk.definitions.decorators`."""

from __future__ import annotations

from tradewind.sdk.decorators import (
    setup,
    task,
    teardown,
)

__all__ = [
    "setup",
    "task",
    "teardown",
]
