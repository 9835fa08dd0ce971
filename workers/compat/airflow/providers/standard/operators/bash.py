"""`airflow.providers.standard.operators.bash`."""

from __future__ import annotations

from tradewind.sdk.operators.bash import (
    BashOperator,
)

__all__ = [
    "BashOperator",
]
