"""`airflow.operators.bash_operator` (Airflow 1 path)."""

from __future__ import annotations

from tradewind.sdk.operators.bash import (
    BashOperator,
)

__all__ = [
    "BashOperator",
]
