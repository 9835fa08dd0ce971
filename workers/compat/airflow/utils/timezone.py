"""`airflow.utils.timezone`: Airflow's timezone helpers (UTC default)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum

__all__ = [
    "TIMEZONE",
    "coerce_datetime",
    "convert_to_utc",
    "datetime",
    "is_localized",
    "is_naive",
    "make_aware",
    "make_naive",
    "parse",
    "utc",
    "utcnow",
]

utc = pendulum.UTC
TIMEZONE = utc


def utcnow() -> pendulum.DateTime:
    """Now, in UTC."""
    return pendulum.now("UTC")


def datetime(*args: Any, **kwargs: Any) -> dt.datetime:
    """A datetime with UTC as timezone unless `tzinfo` is given."""
    kwargs.setdefault("tzinfo", TIMEZONE)
    return dt.datetime(*args, **kwargs)


def parse(string: str, timezone: Any = None, **kwargs: Any) -> pendulum.DateTime:
    """Parse a date-time string; naive values are in `timezone` (UTC by default)."""
    return pendulum.parse(string, tz=timezone or TIMEZONE, **kwargs)


def is_localized(value: dt.datetime) -> bool:
    """Whether `value` carries a timezone."""
    return value.utcoffset() is not None


def is_naive(value: dt.datetime) -> bool:
    """Whether `value` has no timezone."""
    return value.utcoffset() is None


def make_aware(value: dt.datetime | None, timezone: Any = None) -> dt.datetime | None:
    """A naive datetime as one in `timezone` (UTC by default)."""
    if value is None:
        return None
    if is_localized(value):
        raise ValueError(f"make_aware expects a naive datetime, got {value}")
    zone = timezone or TIMEZONE
    if isinstance(zone, str):
        zone = pendulum.timezone(zone)
    return value.replace(tzinfo=zone)


def make_naive(value: dt.datetime, timezone: Any = None) -> dt.datetime:
    """An aware datetime as the naive local time in `timezone` (UTC by default)."""
    if is_naive(value):
        raise ValueError("make_naive() can't be applied to a naive datetime")
    zone = timezone or TIMEZONE
    if isinstance(zone, str):
        zone = pendulum.timezone(zone)
    return value.astimezone(zone).replace(tzinfo=None)


def convert_to_utc(value: dt.datetime | None) -> pendulum.DateTime | None:
    """`value` in UTC (a naive value is taken as UTC)."""
    if value is None:
        return None
    if is_naive(value):
        value = make_aware(value)
    return pendulum.instance(value).in_timezone("UTC")


def coerce_datetime(value: dt.datetime | None, tz: Any = None) -> pendulum.DateTime | None:
    """`value` as a pendulum DateTime (naive values taken as UTC, or in `tz`)."""
    if value is None:
        return None
    if is_naive(value):
        value = make_aware(value, tz)
    return pendulum.instance(value)
