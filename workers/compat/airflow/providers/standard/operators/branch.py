"""`airflow.providers.standard.operators.branch`."""

from __future__ import annotations

from tradewind.sdk.operators.branch import (
    BaseBranchOperator,
    BranchMixIn,
)

__all__ = [
    "BaseBranchOperator",
    "BranchMixIn",
]
