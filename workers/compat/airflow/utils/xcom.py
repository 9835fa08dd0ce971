"""`airflow.utils.xcom`."""

from __future__ import annotations

from tradewind.sdk.execution import (
    XCOM_RETURN_KEY,
)

__all__ = [
    "XCOM_RETURN_KEY",
]
