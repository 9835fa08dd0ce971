"""`airflow.providers.standard.sensors.time_delta`."""

from __future__ import annotations

from tradewind.sdk.sensors.time_delta import (
    TimeDeltaSensor,
    TimeDeltaSensorAsync,
    WaitSensor,
)

__all__ = [
    "TimeDeltaSensor",
    "TimeDeltaSensorAsync",
    "WaitSensor",
]
