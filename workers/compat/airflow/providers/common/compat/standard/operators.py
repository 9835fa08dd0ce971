"""`airflow.providers.common.compat.standard.operators`."""

from __future__ import annotations

from airflow.providers.standard.operators.python import (
    PythonOperator,
    ShortCircuitOperator,
)
from airflow.sdk import (
    BaseOperator,
    get_current_context,
)

__all__ = [
    "BaseOperator",
    "PythonOperator",
    "ShortCircuitOperator",
    "get_current_context",
]
