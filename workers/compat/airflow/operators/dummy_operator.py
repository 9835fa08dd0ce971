"""`airflow.operators.dummy_operator` (Airflow 1 path)."""

from __future__ import annotations

from tradewind.sdk.operators.empty import (
    DummyOperator,
)

__all__ = [
    "DummyOperator",
]
