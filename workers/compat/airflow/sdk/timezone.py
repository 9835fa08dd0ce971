"""`airflow.sdk.timezone` (Airflow 3.1): the same helpers as `airflow.utils.timezone`."""

from airflow.utils.timezone import (
    TIMEZONE,
    coerce_datetime,
    convert_to_utc,
    datetime,
    is_localized,
    is_naive,
    make_aware,
    make_naive,
    parse,
    utc,
    utcnow,
)

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
