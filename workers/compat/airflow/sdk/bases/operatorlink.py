"""`airflow.sdk.bases.operatorlink`."""

from __future__ import annotations

from tradewind.sdk.baseoperator import (
    BaseOperatorLink,
)

__all__ = [
    "BaseOperatorLink",
]
