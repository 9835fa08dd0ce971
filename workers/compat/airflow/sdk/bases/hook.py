"""`airflow.sdk.bases.hook`."""

from __future__ import annotations

from tradewind.sdk.connections import (
    BaseHook,
)

__all__ = [
    "BaseHook",
]
