"""`airflow.sdk`: Airflow 3's authoring interface."""

from __future__ import annotations

from airflow.utils.dag_parsing_context import get_parsing_context
from airflow.utils.state import DagRunState, TaskInstanceState
from tradewind.sdk.assets import (
    Asset,
    AssetAlias,
    AssetAll,
    AssetAny,
    Metadata,
    asset,
)
from tradewind.sdk.baseoperator import (
    BaseOperator,
    BaseOperatorLink,
    chain,
    chain_linear,
    cross_downstream,
)
from tradewind.sdk.connections import (
    BaseHook,
    Connection,
)
from tradewind.sdk.context import (
    Context,
    conf,
    get_current_context,
)
from tradewind.sdk.dag import (
    DAG,
    dag,
)
from tradewind.sdk.decorators import (
    setup,
    task,
    teardown,
)
from tradewind.sdk.edges import (
    EdgeModifier,
    Label,
)
from tradewind.sdk.mappedoperator import (
    MappedOperator,
)
from tradewind.sdk.notifier import (
    BaseNotifier,
)
from tradewind.sdk.objectstorage import (
    ObjectStoragePath,
)
from tradewind.sdk.params import (
    Param,
    ParamsDict,
)
from tradewind.sdk.sensors.base import (
    BaseSensorOperator,
    PokeReturnValue,
)
from tradewind.sdk.taskgroup import (
    TaskGroup,
    task_group,
)
from tradewind.sdk.templater import (
    literal,
)
from tradewind.sdk.timetables import (
    AssetOrTimeSchedule,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DeltaDataIntervalTimetable,
    DeltaTriggerTimetable,
    EventsTimetable,
    MultipleCronTriggerTimetable,
)
from tradewind.sdk.trigger_rule import (
    TriggerRule,
)
from tradewind.sdk.variables import (
    Variable,
)
from tradewind.sdk.weight_rule import (
    WeightRule,
)
from tradewind.sdk.xcom_arg import (
    XComArg,
)

__all__ = [
    "Asset",
    "AssetAlias",
    "AssetAll",
    "AssetAny",
    "AssetOrTimeSchedule",
    "BaseHook",
    "BaseNotifier",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "Connection",
    "Context",
    "CronDataIntervalTimetable",
    "CronTriggerTimetable",
    "DAG",
    "DagRunState",
    "DeltaDataIntervalTimetable",
    "DeltaTriggerTimetable",
    "EdgeModifier",
    "EventsTimetable",
    "Label",
    "MappedOperator",
    "Metadata",
    "MultipleCronTriggerTimetable",
    "ObjectStoragePath",
    "Param",
    "ParamsDict",
    "PokeReturnValue",
    "TaskGroup",
    "TaskInstanceState",
    "TriggerRule",
    "Variable",
    "WeightRule",
    "XComArg",
    "asset",
    "chain",
    "chain_linear",
    "conf",
    "cross_downstream",
    "dag",
    "get_current_context",
    "get_parsing_context",
    "literal",
    "setup",
    "task",
    "task_group",
    "teardown",
]
