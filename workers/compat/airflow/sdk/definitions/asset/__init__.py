"""`airflow.sdk.definitions.asset`."""

from __future__ import annotations

from tradewind.sdk.assets import (
    Asset,
    AssetAlias,
    AssetAll,
    AssetAny,
    AssetRef,
    BaseAsset,
    Dataset,
    asset,
)

__all__ = [
    "Asset",
    "AssetAlias",
    "AssetAll",
    "AssetAny",
    "AssetRef",
    "BaseAsset",
    "Dataset",
    "asset",
]
