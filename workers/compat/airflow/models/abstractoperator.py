"""`airflow.models.abstractoperator`."""

from __future__ import annotations

from tradewind.sdk.baseoperator import (
    AbstractOperator,
)

__all__ = [
    "AbstractOperator",
]
