"""`airflow.io`: object storage (Airflow 2.8+); only local paths and file:// URLs reach storage."""

from __future__ import annotations

from tradewind.sdk.objectstorage import (
    ObjectStoragePath,
)

__all__ = [
    "ObjectStoragePath",
]
