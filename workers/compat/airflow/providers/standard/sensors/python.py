"""`airflow.providers.standard.sensors.python`."""

from __future__ import annotations

from tradewind.sdk.sensors.python import (
    PythonSensor,
)

__all__ = [
    "PythonSensor",
]
