"""`airflow.timetables.datasets`."""

from __future__ import annotations

from tradewind.sdk.timetables import (
    AssetOrTimeSchedule as DatasetOrTimeSchedule,
)

__all__ = [
    "DatasetOrTimeSchedule",
]
