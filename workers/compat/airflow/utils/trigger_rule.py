"""`airflow.utils.trigger_rule`."""

from __future__ import annotations

from tradewind.sdk.trigger_rule import (
    TriggerRule,
)

__all__ = [
    "TriggerRule",
]
