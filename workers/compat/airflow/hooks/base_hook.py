"""`airflow.hooks.base_hook` (Airflow 1 path)."""

from __future__ import annotations

from tradewind.sdk.connections import (
    BaseHook,
)

__all__ = [
    "BaseHook",
]
