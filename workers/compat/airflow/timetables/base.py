"""`airflow.timetables.base`."""

from __future__ import annotations

from tradewind.sdk.timetables import (
    DagRunInfo,
    DataInterval,
    TimeRestriction,
    Timetable,
)

__all__ = [
    "DagRunInfo",
    "DataInterval",
    "TimeRestriction",
    "Timetable",
]
