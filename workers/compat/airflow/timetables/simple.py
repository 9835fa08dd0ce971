"""`airflow.timetables.simple`."""

from __future__ import annotations

from tradewind.sdk.timetables import (
    AssetTriggeredTimetable,
    ContinuousTimetable,
    NullTimetable,
    OnceTimetable,
)
from tradewind.sdk.timetables import (
    AssetTriggeredTimetable as DatasetTriggeredTimetable,
)

__all__ = [
    "AssetTriggeredTimetable",
    "ContinuousTimetable",
    "DatasetTriggeredTimetable",
    "NullTimetable",
    "OnceTimetable",
]
