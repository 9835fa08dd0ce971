"""`airflow.models.mappedoperator`."""

from __future__ import annotations

from tradewind.sdk.mappedoperator import (
    MappedOperator,
    OperatorPartial,
)

__all__ = [
    "MappedOperator",
    "OperatorPartial",
]
