"""`airflow.hooks.base`."""

from __future__ import annotations

from tradewind.sdk.connections import (
    BaseHook,
)

__all__ = [
    "BaseHook",
]
