"""`airflow.sensors.base_sensor_operator` (Airflow 1 path)."""

from __future__ import annotations

from tradewind.sdk.sensors.base import (
    BaseSensorOperator,
    PokeReturnValue,
    poke_mode_only,
)

__all__ = [
    "BaseSensorOperator",
    "PokeReturnValue",
    "poke_mode_only",
]
