"""`airflow.models.dag`."""

from __future__ import annotations

from tradewind.sdk.dag import (
    Airflow2DAG as DAG,
)
from tradewind.sdk.dag import (
    DagContext,
)
from tradewind.sdk.dag import (
    airflow2_dag as dag,
)

__all__ = [
    "DAG",
    "DagContext",
    "dag",
]
