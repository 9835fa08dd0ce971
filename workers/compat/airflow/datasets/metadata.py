"""`airflow.datasets.metadata`."""

from __future__ import annotations

from tradewind.sdk.assets import (
    Metadata,
)

__all__ = [
    "Metadata",
]
