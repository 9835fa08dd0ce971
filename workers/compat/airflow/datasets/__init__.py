"""`airflow.datasets` (Airflow 2's name for assets)."""

from __future__ import annotations

from tradewind.sdk.assets import (
    Dataset,
    DatasetAlias,
    DatasetAll,
    DatasetAny,
)

__all__ = [
    "Dataset",
    "DatasetAlias",
    "DatasetAll",
    "DatasetAny",
]
