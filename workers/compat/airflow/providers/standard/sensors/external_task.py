"""`airflow.providers.standard.sensors.external_task`."""

from __future__ import annotations

from tradewind.sdk.sensors.external_task import (
    ExternalTaskMarker,
    ExternalTaskSensor,
)

__all__ = [
    "ExternalTaskMarker",
    "ExternalTaskSensor",
]
