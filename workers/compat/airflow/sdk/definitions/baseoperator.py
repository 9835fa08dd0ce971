"""`airflow.sdk.definitions.baseoperator`."""

from __future__ import annotations

from tradewind.sdk.baseoperator import (
    BaseOperator,
    chain,
    chain_linear,
    cross_downstream,
)

__all__ = [
    "BaseOperator",
    "chain",
    "chain_linear",
    "cross_downstream",
]
