"""`airflow.sdk.definitions.dag`."""

from __future__ import annotations

from tradewind.sdk.dag import (
    DAG,
    dag,
)

__all__ = [
    "DAG",
    "dag",
]
