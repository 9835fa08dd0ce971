"""`airflow.sensors.weekday`."""

from __future__ import annotations

from tradewind.sdk.sensors.weekday import (
    DayOfWeekSensor,
)

__all__ = [
    "DayOfWeekSensor",
]
