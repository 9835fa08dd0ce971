"""`airflow.models.dagrun` (the running DAG run's type)."""

from __future__ import annotations

from tradewind.sdk.context import (
    RuntimeDagRun as DagRun,
)

__all__ = [
    "DagRun",
]
