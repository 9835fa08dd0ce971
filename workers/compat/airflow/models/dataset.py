"""`airflow.models.dataset` (Airflow 2.4–2.11): the dataset classes DAG files import from here too."""

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
