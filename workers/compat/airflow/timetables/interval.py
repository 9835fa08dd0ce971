"""`airflow.timetables.interval`."""

from __future__ import annotations

from tradewind.sdk.timetables import (
    CronDataIntervalTimetable,
    DeltaDataIntervalTimetable,
)

__all__ = [
    "CronDataIntervalTimetable",
    "DeltaDataIntervalTimetable",
]
