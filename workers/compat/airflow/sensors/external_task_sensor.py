"""`airflow.sensors.external_task_sensor` (Airflow 1 path)."""

from __future__ import annotations

from tradewind.sdk.sensors.external_task import (
    ExternalTaskMarker,
    ExternalTaskSensor,
)

__all__ = [
    "ExternalTaskMarker",
    "ExternalTaskSensor",
]
