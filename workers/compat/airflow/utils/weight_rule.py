"""`airflow.utils.weight_rule`."""

from __future__ import annotations

from tradewind.sdk.weight_rule import (
    WeightRule,
)

__all__ = [
    "WeightRule",
]
