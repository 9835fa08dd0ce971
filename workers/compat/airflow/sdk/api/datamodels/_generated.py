"""`airflow.sdk.api.datamodels._generated`: the enums DAG files import from it (Airflow's own example DAGs take
TriggerRule from here). Its other names are Airflow's Execution API messages, which DAG files do not use."""

from __future__ import annotations

from airflow.utils.state import DagRunState, TaskInstanceState
from airflow.utils.types import DagRunType
from tradewind.sdk.trigger_rule import TriggerRule
from tradewind.sdk.weight_rule import WeightRule

__all__ = [
    "DagRunState",
    "DagRunType",
    "TaskInstanceState",
    "TriggerRule",
    "WeightRule",
]
