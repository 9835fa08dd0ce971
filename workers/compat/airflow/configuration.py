"""`airflow.configuration`: `conf.get(...)` for the options DAG files read."""

from __future__ import annotations

from tradewind.sdk.context import (
    AirflowConfigAccessor as AirflowConfigParser,
)
from tradewind.sdk.context import (
    conf,
)

__all__ = [
    "AirflowConfigParser",
    "conf",
]
