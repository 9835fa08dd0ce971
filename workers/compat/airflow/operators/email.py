"""`airflow.operators.email` (running it fails: no mail server for tasks)."""

from __future__ import annotations

from tradewind.sdk.operators.email import (
    EmailOperator,
)

__all__ = [
    "EmailOperator",
]
