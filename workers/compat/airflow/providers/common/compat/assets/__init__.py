"""`airflow.providers.common.compat.assets`: the asset classes of `airflow.sdk`."""

from __future__ import annotations

from airflow.sdk import (
    Asset,
    AssetAlias,
    AssetAll,
    AssetAny,
)

__all__ = [
    "Asset",
    "AssetAlias",
    "AssetAll",
    "AssetAny",
]
