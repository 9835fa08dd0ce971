"""`airflow.providers.standard.sensors.time`."""

from __future__ import annotations

from tradewind.sdk.sensors.time import (
    TimeSensor,
    TimeSensorAsync,
)

__all__ = [
    "TimeSensor",
    "TimeSensorAsync",
]
