"""`airflow.utils.weekday`."""

from __future__ import annotations

from tradewind.sdk.operators.weekday import (
    WeekDay,
)

__all__ = [
    "WeekDay",
]
