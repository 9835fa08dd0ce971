"""`airflow.models`: the DAG model classes DAG files import."""

from __future__ import annotations

from tradewind.sdk.baseoperator import (
    BaseOperator,
    BaseOperatorLink,
)
from tradewind.sdk.connections import (
    Connection,
)
from tradewind.sdk.context import (
    RuntimeDagRun as DagRun,
)
from tradewind.sdk.dag import (
    Airflow2DAG as DAG,
)
from tradewind.sdk.execution import (
    RuntimeTaskInstance as TaskInstance,
)
from tradewind.sdk.execution import (
    XCom,
)
from tradewind.sdk.mappedoperator import (
    MappedOperator,
)
from tradewind.sdk.operators.branch import (
    SkipMixin,
)
from tradewind.sdk.params import (
    Param,
    ParamsDict,
)
from tradewind.sdk.variables import (
    Variable,
)
from tradewind.sdk.xcom_arg import (
    XComArg,
)

__all__ = [
    "BaseOperator",
    "BaseOperatorLink",
    "Connection",
    "DAG",
    "DagRun",
    "MappedOperator",
    "Param",
    "ParamsDict",
    "SkipMixin",
    "TaskInstance",
    "Variable",
    "XCom",
    "XComArg",
]
