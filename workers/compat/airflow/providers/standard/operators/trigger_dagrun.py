"""`airflow.providers.standard.operators.trigger_dagrun`."""

from __future__ import annotations

from tradewind.sdk.operators.trigger_dagrun import (
    TriggerDagRunLink,
    TriggerDagRunOperator,
)

__all__ = [
    "TriggerDagRunLink",
    "TriggerDagRunOperator",
]
