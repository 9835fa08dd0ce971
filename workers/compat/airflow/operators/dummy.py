"""`airflow.operators.dummy` (deprecated alias of EmptyOperator)."""

from __future__ import annotations

from tradewind.sdk.operators.empty import (
    DummyOperator,
    EmptyOperator,
)

__all__ = [
    "DummyOperator",
    "EmptyOperator",
]
