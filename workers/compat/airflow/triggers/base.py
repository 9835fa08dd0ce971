"""`airflow.triggers.base`."""

from __future__ import annotations

from tradewind.sdk.triggers import (
    BaseTrigger,
    TriggerEvent,
)

__all__ = [
    "BaseTrigger",
    "TriggerEvent",
]
