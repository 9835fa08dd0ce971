"""`airflow.operators.weekday`."""

from __future__ import annotations

from tradewind.sdk.operators.weekday import (
    BranchDayOfWeekOperator,
)

__all__ = [
    "BranchDayOfWeekOperator",
]
