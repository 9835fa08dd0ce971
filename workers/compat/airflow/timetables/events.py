"""`airflow.timetables.events`."""

from __future__ import annotations

from tradewind.sdk.timetables import (
    EventsTimetable,
)

__all__ = [
    "EventsTimetable",
]
