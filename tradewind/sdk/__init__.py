"""Tradewind's DAG authoring SDK (pure Python; Airflow's public authoring API).

    from tradewind.sdk import DAG, dag, task, BaseOperator, TaskGroup, task_group, Param, Asset, chain

The graph model (DAG, operators, groups, params, assets, timetables) is imported eagerly; names from the
execution side (task decorators, context, variables, connections, sensors) are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from tradewind.sdk.assets import (
    Asset,
    AssetAlias,
    AssetAll,
    AssetAny,
    AssetRef,
    Dataset,
    DatasetAlias,
    Metadata,
    asset,
)
from tradewind.sdk.baseoperator import BaseOperator, BaseOperatorLink, chain, chain_linear, cross_downstream
from tradewind.sdk.dag import DAG, Airflow2DAG, DagContext, airflow2_dag, dag
from tradewind.sdk.edges import EdgeModifier, Label
from tradewind.sdk.mappedoperator import MappedOperator
from tradewind.sdk.params import NOTSET, ArgNotSet, Param, ParamsDict
from tradewind.sdk.taskgroup import MappedTaskGroup, TaskGroup, task_group
from tradewind.sdk.trigger_rule import TriggerRule
from tradewind.sdk.weight_rule import WeightRule
from tradewind.sdk.xcom_arg import XComArg

# Names living in the execution-side modules, imported when first asked for (PEP 562).
_LAZY: dict[str, str] = {
    "task": "tradewind.sdk.decorators",
    "setup": "tradewind.sdk.decorators",
    "teardown": "tradewind.sdk.decorators",
    "get_current_context": "tradewind.sdk.context",
    "Context": "tradewind.sdk.context",
    "Variable": "tradewind.sdk.variables",
    "Connection": "tradewind.sdk.connections",
    "BaseHook": "tradewind.sdk.connections",
    "BaseSensorOperator": "tradewind.sdk.sensors.base",
    "PokeReturnValue": "tradewind.sdk.sensors.base",
    "literal": "tradewind.sdk.templater",
    "ObjectStoragePath": "tradewind.sdk.objectstorage",
}

__all__ = [
    "DAG",
    "NOTSET",
    "Airflow2DAG",
    "ArgNotSet",
    "Asset",
    "AssetAlias",
    "AssetAll",
    "AssetAny",
    "AssetRef",
    "BaseOperator",
    "BaseOperatorLink",
    "DagContext",
    "Dataset",
    "DatasetAlias",
    "EdgeModifier",
    "Label",
    "MappedOperator",
    "MappedTaskGroup",
    "Metadata",
    "Param",
    "ParamsDict",
    "TaskGroup",
    "TriggerRule",
    "WeightRule",
    "XComArg",
    "airflow2_dag",
    "asset",
    "chain",
    "chain_linear",
    "cross_downstream",
    "dag",
    "task_group",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
