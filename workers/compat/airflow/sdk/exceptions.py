"""`airflow.sdk.exceptions`."""

from __future__ import annotations

from tradewind.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowRuntimeError,
    AirflowSkipException,
)

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowRuntimeError",
    "AirflowSkipException",
]
