"""`airflow.sdk.definitions.asset.decorators`."""

from __future__ import annotations

from tradewind.sdk.assets import (
    AssetDefinition,
    MultiAssetDefinition,
    asset,
)

__all__ = [
    "AssetDefinition",
    "MultiAssetDefinition",
    "asset",
]
