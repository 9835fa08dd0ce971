"""`airflow.providers.standard.sensors.bash`."""

from __future__ import annotations

from tradewind.sdk.sensors.bash import (
    BashSensor,
)

__all__ = [
    "BashSensor",
]
