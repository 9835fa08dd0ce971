"""`airflow.providers.standard.sensors.filesystem`."""

from __future__ import annotations

from tradewind.sdk.sensors.filesystem import (
    FileSensor,
)

__all__ = [
    "FileSensor",
]
