"""The `macros` object available in templates (`{{ macros.ds_add(ds, 7) }}`), as Airflow provides it."""

from __future__ import annotations

import json  # noqa: F401  (part of the public macros namespace)
import time  # noqa: F401
import uuid  # noqa: F401
from datetime import datetime, timedelta
from random import random  # noqa: F401
from typing import Any

import dateutil  # noqa: F401

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


def ds_add(ds: str, days: int) -> str:
    """Shift a ``YYYY-MM-DD`` date string by `days` (may be negative): ``ds_add('2015-01-01', 5)`` is
    ``'2015-01-06'``."""
    if not days:
        return str(ds)
    shifted = datetime.strptime(str(ds), "%Y-%m-%d") + timedelta(days=days)
    return shifted.strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """Re-format a date string: ``ds_format('2015-01-01', '%Y-%m-%d', '%m-%d-%y')`` is ``'01-01-15'``."""
    return datetime.strptime(str(ds), input_format).strftime(output_format)


def datetime_diff_for_humans(dt: Any, since: Any = None) -> str:
    """A human-readable distance between `dt` and `since` (default: now), e.g. ``'2 days ago'``."""
    import pendulum

    return pendulum.instance(dt).diff_for_humans(pendulum.instance(since) if since is not None else None)


def __getattr__(name: str) -> Any:
    # `macros.yaml` is imported only when a template uses it: it is slow to import and rarely needed.
    if name == "yaml":
        import yaml

        return yaml
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
