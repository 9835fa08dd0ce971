"""`airflow.timetables.assets`."""

from __future__ import annotations

from tradewind.sdk.timetables import (
    AssetOrTimeSchedule,
)

__all__ = [
    "AssetOrTimeSchedule",
]
