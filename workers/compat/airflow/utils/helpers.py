"""`airflow.utils.helpers`."""

from __future__ import annotations

from tradewind.sdk.baseoperator import (
    chain,
    cross_downstream,
)

__all__ = [
    "chain",
    "cross_downstream",
]
