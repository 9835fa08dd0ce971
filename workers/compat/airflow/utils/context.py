"""`airflow.utils.context`."""

from __future__ import annotations

from tradewind.sdk.context import (
    KNOWN_CONTEXT_KEYS,
    Context,
    get_current_context,
)

__all__ = [
    "Context",
    "KNOWN_CONTEXT_KEYS",
    "get_current_context",
]
