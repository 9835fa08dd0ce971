"""`airflow.operators.latest_only`."""

from __future__ import annotations

from tradewind.sdk.operators.latest_only import (
    LatestOnlyOperator,
)

__all__ = [
    "LatestOnlyOperator",
]
