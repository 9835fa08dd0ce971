"""`airflow.sdk.definitions.edges`."""

from __future__ import annotations

from tradewind.sdk.edges import (
    EdgeModifier,
    Label,
)

__all__ = [
    "EdgeModifier",
    "Label",
]
