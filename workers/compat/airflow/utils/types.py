"""`airflow.utils.types`."""

from __future__ import annotations

from tradewind.sdk.params import (
    NOTSET,
    ArgNotSet,
)

__all__ = [
    "ArgNotSet",
    "NOTSET",
]

from enum import StrEnum


class DagRunType(StrEnum):
    """The kind of a DAG run (the values Tradewind stores)."""

    BACKFILL_JOB = "backfill"
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    ASSET_TRIGGERED = "asset_triggered"
    DATASET_TRIGGERED = "asset_triggered"
