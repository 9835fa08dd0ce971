"""`airflow.triggers.temporal`."""

from __future__ import annotations

from tradewind.sdk.triggers import (
    DateTimeTrigger,
    TimeDeltaTrigger,
)

__all__ = [
    "DateTimeTrigger",
    "TimeDeltaTrigger",
]
