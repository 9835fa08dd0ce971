"""`airflow.sdk.definitions.connection`."""

from __future__ import annotations

from tradewind.sdk.connections import (
    Connection,
)

__all__ = [
    "Connection",
]
