"""`airflow.sdk.definitions.xcom_arg`."""

from __future__ import annotations

from tradewind.sdk.xcom_arg import (
    XComArg,
)

__all__ = [
    "XComArg",
]
