"""`airflow.models.operator`."""

from __future__ import annotations

from tradewind.sdk.baseoperator import (
    BaseOperator as Operator,
)

__all__ = [
    "Operator",
]
