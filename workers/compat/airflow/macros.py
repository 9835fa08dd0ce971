"""`airflow.macros`: the template macros (`macros.ds_add`, ...)."""

from __future__ import annotations

from typing import Any

from tradewind.sdk.macros import (
    datetime,
    datetime_diff_for_humans,
    dateutil,
    ds_add,
    ds_format,
    json,
    random,
    time,
    timedelta,
    uuid,
)

__all__ = [
    "datetime",
    "datetime_diff_for_humans",
    "dateutil",
    "ds_add",
    "ds_format",
    "json",
    "random",
    "time",
    "timedelta",
    "uuid",
]


def __getattr__(name: str) -> Any:
    from tradewind.sdk import macros

    return getattr(macros, name)
