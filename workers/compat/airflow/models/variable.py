"""`airflow.models.variable`."""

from __future__ import annotations

from tradewind.sdk.variables import (
    Variable,
)

__all__ = [
    "Variable",
]
