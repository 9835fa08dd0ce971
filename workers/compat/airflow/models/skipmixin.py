"""`airflow.models.skipmixin`."""

from __future__ import annotations

from tradewind.sdk.operators.branch import (
    SkipMixin,
)

__all__ = [
    "SkipMixin",
]
