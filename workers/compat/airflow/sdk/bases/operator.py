"""`airflow.sdk.bases.operator`."""

from __future__ import annotations

from tradewind.sdk.baseoperator import (
    BaseOperator,
    BaseOperatorLink,
    chain,
    chain_linear,
    cross_downstream,
)

__all__ = [
    "BaseOperator",
    "BaseOperatorLink",
    "chain",
    "chain_linear",
    "cross_downstream",
]
