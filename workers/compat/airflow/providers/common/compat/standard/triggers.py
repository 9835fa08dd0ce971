"""`airflow.providers.common.compat.standard.triggers`."""

from __future__ import annotations

from airflow.providers.standard.triggers.temporal import (
    TimeDeltaTrigger,
)

__all__ = [
    "TimeDeltaTrigger",
]
