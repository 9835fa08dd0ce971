"""`airflow.sdk.io`."""

from __future__ import annotations

from tradewind.sdk.objectstorage import (
    ObjectStoragePath,
)

__all__ = [
    "ObjectStoragePath",
]
