"""`airflow.models.xcom_arg`."""

from __future__ import annotations

from tradewind.sdk.xcom_arg import (
    MapXComArg,
    PlainXComArg,
    XComArg,
    ZipXComArg,
)

__all__ = [
    "MapXComArg",
    "PlainXComArg",
    "XComArg",
    "ZipXComArg",
]
