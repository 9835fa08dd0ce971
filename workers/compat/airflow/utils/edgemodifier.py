"""`airflow.utils.edgemodifier`."""

from __future__ import annotations

from tradewind.sdk.edges import (
    EdgeModifier,
    Label,
)

__all__ = [
    "EdgeModifier",
    "Label",
]
