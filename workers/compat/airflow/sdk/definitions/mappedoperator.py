"""`airflow.sdk.definitions.mappedoperator`."""

from __future__ import annotations

from tradewind.sdk.mappedoperator import (
    MappedOperator,
)

__all__ = [
    "MappedOperator",
]
