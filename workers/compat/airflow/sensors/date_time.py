"""`airflow.sensors.date_time`."""

from __future__ import annotations

from tradewind.sdk.sensors.date_time import (
    DateTimeSensor,
    DateTimeSensorAsync,
)

__all__ = [
    "DateTimeSensor",
    "DateTimeSensorAsync",
]
