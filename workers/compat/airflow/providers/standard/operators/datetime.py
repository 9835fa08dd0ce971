"""`airflow.providers.standard.operators.datetime`."""

from __future__ import annotations

from tradewind.sdk.operators.weekday import (
    BranchDateTimeOperator,
)

__all__ = [
    "BranchDateTimeOperator",
]
