"""`airflow.providers.standard.triggers.file`."""

from __future__ import annotations

from tradewind.sdk.triggers import (
    FileTrigger,
)

__all__ = [
    "FileTrigger",
]
