"""`airflow.models.xcom`."""

from __future__ import annotations

from tradewind.sdk.execution import (
    XCOM_RETURN_KEY,
    XCom,
)

__all__ = [
    "XCOM_RETURN_KEY",
    "XCom",
]
