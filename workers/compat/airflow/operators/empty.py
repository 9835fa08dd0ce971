"""`airflow.operators.empty`."""

from __future__ import annotations

from tradewind.sdk.operators.empty import (
    EmptyOperator,
)

__all__ = [
    "EmptyOperator",
]
