"""A DAG as deterministic JSON: everything the scheduler and UI need, without DAG code.

`serialize_dag(dag)` gives a dict whose JSON (sorted keys) is the same whenever the DAG file is the same;
`dag_hash` is the sha256 of that canonical JSON. Lists whose order carries no meaning are sorted (tasks by
task_id, ids, tags, edges). Durations are seconds (float) or None; datetimes ISO 8601 with offset.
`mapped_length` computes a mapped task's number of map indexes from the serialized DAG.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hashlib
import inspect
import json
import math
import os
from collections.abc import Mapping
from typing import Any

from tradewind.sdk.assets import BaseAsset
from tradewind.sdk.baseoperator import AbstractOperator
from tradewind.sdk.dag import DAG
from tradewind.sdk.exceptions import SerializationError
from tradewind.sdk.params import ArgNotSet, Param, ParamsDict
from tradewind.sdk.taskgroup import MappedTaskGroup, TaskGroup
from tradewind.sdk.timetables import Timetable, timezone_name
from tradewind.sdk.xcom_arg import ResolveMixin, XComArg

FORMAT_VERSION = 1

_CALLBACKS = ("on_success", "on_failure", "on_retry", "on_execute", "on_skipped")


def _seconds(value: dt.timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _name_of(value: Any) -> str:
    module = getattr(value, "__module__", None) or type(value).__module__
    name = (
        getattr(value, "__qualname__", None) or getattr(value, "__name__", None) or type(value).__qualname__
    )
    return f"{module}.{name}"


def to_jsonable(value: Any) -> Any:
    """A deterministic JSON-safe form of any value found in DAG and task arguments.

    Containers recurse (sets are sorted), datetimes become ISO strings, timedeltas seconds, params and
    assets their serialized form, XComArgs {"xcom": ...}; callables and other objects a stable description
    (never a memory address)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping) and not isinstance(value, ParamsDict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, ParamsDict):
        return value.serialize()
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, Param):
        return value.serialize()
    if isinstance(value, BaseAsset):
        return value.serialize()
    if isinstance(value, XComArg):
        return value.serialize()
    if isinstance(value, ResolveMixin):
        return {"resolvable": repr(value)}
    if isinstance(value, ArgNotSet):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, type):
        return f"<class {_name_of(value)}>"
    if callable(value):
        return f"<callable {_name_of(value)}>"
    text = repr(value)
    if " at 0x" in text:
        return f"<{_name_of(type(value))}>"
    return text


@functools.cache
def _class_traits(cls: type) -> tuple[str | None, bool]:
    """(kind: "branch" | "short_circuit" | None, is a sensor) of an operator class, from its bases' names."""
    names = [klass.__name__ for klass in cls.__mro__]
    kind = None
    if any("ShortCircuit" in name for name in names):
        kind = "short_circuit"
    elif any("Branch" in name for name in names):
        kind = "branch"
    return kind, "BaseSensorOperator" in names


def _operator_class(task: AbstractOperator) -> type:
    return task.operator_class if task.is_mapped else type(task)  # type: ignore[attr-defined]


def _kind(task: AbstractOperator) -> str | None:
    return _class_traits(_operator_class(task))[0]


def _init_defaults(cls: type) -> dict[str, Any]:
    """Keyword defaults declared by the __init__ methods of `cls` and its bases (subclasses win)."""
    defaults: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        init = getattr(init, "__wrapped__", init)
        if init is None or not callable(init):
            continue
        try:
            parameters = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        defaults.update({p.name: p.default for p in parameters if p.default is not p.empty})
    return defaults


def _sensor_fields(task: AbstractOperator) -> dict[str, Any] | None:
    cls = _operator_class(task)
    if not _class_traits(cls)[1]:
        return None
    partial = {**_init_defaults(cls), **task.partial_kwargs} if task.is_mapped else None  # type: ignore[attr-defined]

    def value(name: str) -> Any:
        return partial.get(name) if partial is not None else getattr(task, name, None)

    def seconds(name: str) -> float | None:
        found = value(name)
        if isinstance(found, dt.timedelta):
            return found.total_seconds()
        return float(found) if isinstance(found, int | float) and not isinstance(found, bool) else None

    return {
        "mode": value("mode") or "poke",
        "poke_interval": seconds("poke_interval"),
        "timeout": seconds("timeout"),
        "soft_fail": bool(value("soft_fail")),
        "deferrable": bool(value("deferrable")),
        "exponential_backoff": bool(value("exponential_backoff")),
        "max_wait": seconds("max_wait"),
    }


def _template_values(task: AbstractOperator) -> dict[str, Any]:
    if task.is_mapped:
        kwargs = task.partial_kwargs  # type: ignore[attr-defined]
        return {name: to_jsonable(kwargs[name]) for name in task.template_fields if name in kwargs}  # type: ignore[attr-defined]
    return {name: to_jsonable(getattr(task, name, None)) for name in task.template_fields}  # type: ignore[attr-defined]


def _assets(values: list[Any]) -> list[Any]:
    return [to_jsonable(v) for v in values]


def priority_weight_totals(dag: DAG) -> dict[str, int]:
    """task_id -> effective priority (own weight plus all downstream/upstream weights, by weight rule)."""
    order = [task.task_id for task in dag.topological_sort()]
    tasks = dag.task_dict
    position = {task_id: i for i, task_id in enumerate(order)}
    weights = [int(getattr(tasks[task_id], "priority_weight", 1)) for task_id in order]

    def reachable(ids: list[str], direction: str) -> dict[str, int]:
        # Sets of relatives as int bitsets (bit i: order[i]): unions of large DAGs stay cheap.
        found: dict[str, int] = {}
        for task_id in ids:
            bits = 0
            for other in getattr(tasks[task_id], direction):
                bits |= (1 << position[other]) | found[other]
            found[task_id] = bits
        return found

    rules = {task_id: str(getattr(tasks[task_id], "weight_rule", "downstream")) for task_id in order}
    below = reachable(order[::-1], "downstream_task_ids") if "downstream" in rules.values() else {}
    above = reachable(order, "upstream_task_ids") if "upstream" in rules.values() else {}
    uniform = len(set(weights)) <= 1  # the usual case: every weight is the default 1
    totals = {}
    for task_id, rule in rules.items():
        own = weights[position[task_id]]
        bits = below[task_id] if rule == "downstream" else above[task_id] if rule == "upstream" else 0
        if uniform:
            totals[task_id] = own * (1 + bits.bit_count())
            continue
        total = own
        while bits:
            lowest = bits & -bits
            total += weights[lowest.bit_length() - 1]
            bits ^= lowest
        totals[task_id] = total
    return totals


def serialize_task(task: AbstractOperator, priority_weight_total: int | None = None) -> dict[str, Any]:
    """One task's JSON form (see serialize_dag)."""
    cls = task.operator_class if task.is_mapped else type(task)  # type: ignore[attr-defined]
    group = task.task_group
    mapped_group = task.get_closest_mapped_task_group()
    t: Any = task
    data: dict[str, Any] = {
        "task_id": task.task_id,
        "label": task.label,
        "operator": task.task_type,
        "operator_module": cls.__module__,
        "operator_name": task.operator_name,
        "ui_color": t.ui_color,
        "ui_fgcolor": t.ui_fgcolor,
        "group_id": group.group_id if group is not None else None,
        "upstream_task_ids": sorted(task.upstream_task_ids),
        "downstream_task_ids": sorted(task.downstream_task_ids),
        "trigger_rule": str(task.trigger_rule),
        "owner": t.owner,
        "email": to_jsonable(t.email),
        "email_on_failure": t.email_on_failure,
        "email_on_retry": t.email_on_retry,
        "retries": t.retries,
        "retry_delay": _seconds(t.retry_delay),
        "retry_exponential_backoff": t.retry_exponential_backoff,
        "max_retry_delay": _seconds(t.max_retry_delay),
        "execution_timeout": _seconds(t.execution_timeout),
        "start_date": _iso(t.start_date),
        "end_date": _iso(t.end_date),
        "depends_on_past": t.depends_on_past,
        "ignore_first_depends_on_past": t.ignore_first_depends_on_past,
        "wait_for_downstream": t.wait_for_downstream,
        "wait_for_past_depends_before_skipping": t.wait_for_past_depends_before_skipping,
        "pool": t.pool,
        "pool_slots": t.pool_slots,
        "priority_weight": t.priority_weight,
        "weight_rule": t.weight_rule,
        "priority_weight_total": (
            task.priority_weight_total if priority_weight_total is None else priority_weight_total
        ),
        "queue": t.queue,
        "sla": _seconds(t.sla),
        "max_active_tis_per_dag": t.max_active_tis_per_dag,
        "max_active_tis_per_dagrun": t.max_active_tis_per_dagrun,
        "run_as_user": t.run_as_user,
        "executor": t.executor,
        "executor_config": to_jsonable(t.executor_config),
        "resources": to_jsonable(t.resources),
        "do_xcom_push": t.do_xcom_push,
        "multiple_outputs": t.multiple_outputs,
        "is_setup": task.is_setup,
        "is_teardown": task.is_teardown,
        "on_failure_fail_dagrun": task.on_failure_fail_dagrun,
        "has_callbacks": {name: getattr(t, f"{name}_callback", None) is not None for name in _CALLBACKS},
        "inlets": _assets(t.inlets),
        "outlets": _assets(t.outlets),
        "doc": t.doc,
        "doc_md": t.doc_md,
        "doc_json": t.doc_json,
        "doc_yaml": t.doc_yaml,
        "doc_rst": t.doc_rst,
        "task_display_name": t.task_display_name,
        "template_fields": list(t.template_fields),
        "template_ext": list(t.template_ext),
        "template_fields_renderers": to_jsonable(t.template_fields_renderers),
        "template_values": _template_values(task),
        "is_empty": task.inherits_from_empty_operator,
        "kind": _kind(task),
        "sensor": _sensor_fields(task),
        "deferrable": bool(getattr(t, "deferrable", False)) if not task.is_mapped else False,
        "is_mapped": task.is_mapped,
        "expand_input": task.expand_input.serialize() if task.is_mapped else None,  # type: ignore[attr-defined]
        "mapped_group_id": mapped_group.group_id if mapped_group is not None else None,
        "map_index_template": t.map_index_template,
    }
    return data


def _serialize_group(group: TaskGroup) -> dict[str, Any]:
    tasks = sorted(child.node_id for child in group.children.values() if not isinstance(child, TaskGroup))
    groups = [_serialize_group(c) for c in group.children.values() if isinstance(c, TaskGroup)]
    groups.sort(key=lambda g: g["group_id"])
    return {
        "group_id": group.group_id,
        "label": group.label,
        "tooltip": group.tooltip,
        "prefix_group_id": group.prefix_group_id,
        "ui_color": group.ui_color,
        "ui_fgcolor": group.ui_fgcolor,
        "is_mapped": isinstance(group, MappedTaskGroup),
        "expand_input": group.expand_input.serialize() if isinstance(group, MappedTaskGroup) else None,
        "tasks": tasks,
        "groups": groups,
    }


def _edges(dag: DAG) -> list[dict[str, Any]]:
    edges = []
    for task_id in sorted(dag.task_dict):
        for down in sorted(dag.task_dict[task_id].downstream_task_ids):
            edge: dict[str, Any] = {"from": task_id, "to": down}
            label = dag.get_edge_info(task_id, down).get("label")
            if label is not None:
                edge["label"] = label
            edges.append(edge)
    return edges


def _schedule(dag: DAG) -> dict[str, Any]:
    """The DAG's timetable in JSON form. Only the platform's own timetables have one: the scheduler computes
    runs without importing DAG code. Airflow likewise refuses a timetable class that no plugin registers."""
    cls = type(dag.timetable)
    if cls.__module__ != Timetable.__module__:
        raise SerializationError(
            f"timetable class {cls.__qualname__!r} is not supported: the scheduler computes "
            "runs outside DAG code, so a schedule must be a cron expression, a preset, a timedelta, assets or "
            "one of the built-in timetables (airflow.timetables.*)"
        )
    return dag.timetable.to_dict()


def serialize_dag(dag: DAG) -> dict[str, Any]:
    """The DAG as a JSON-able dict (see the module docstring and SDK_SPEC.md)."""
    try:
        totals = priority_weight_totals(dag)
        tasks = [serialize_task(dag.task_dict[task_id], totals[task_id]) for task_id in sorted(dag.task_dict)]
        start_dates = [t.start_date for t in dag.task_dict.values() if t.start_date is not None]
        effective_start = dag.start_date or (min(start_dates) if start_dates else None)
        owners = sorted({str(getattr(t, "owner", "")) for t in dag.task_dict.values()})
        return {
            "format_version": FORMAT_VERSION,
            "dag_id": dag.dag_id,
            "dag_display_name": dag.dag_display_name,
            "fileloc": dag.relative_fileloc or dag.fileloc,
            "airflow_version": dag.airflow_version,
            "description": dag.description,
            "doc_md": dag.doc_md,
            "schedule": _schedule(dag),
            "timezone": timezone_name(dag.timezone),
            "start_date": _iso(dag.start_date),
            "end_date": _iso(dag.end_date),
            "effective_start_date": _iso(effective_start),
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "max_active_tasks": dag.max_active_tasks,
            "max_consecutive_failed_dag_runs": dag.max_consecutive_failed_dag_runs,
            "dagrun_timeout": _seconds(dag.dagrun_timeout),
            "fail_fast": dag.fail_stop,
            "tags": sorted(set(dag.tags)),
            "owner": ", ".join(owners),
            "owners": owners,
            "owner_links": dict(sorted(dag.owner_links.items())),
            "params": dag.params.serialize(),
            "default_args": to_jsonable(dag.default_args),
            "access_control": to_jsonable(dag.access_control),
            "is_paused_upon_creation": dag.is_paused_upon_creation,
            "has_on_success_callback": dag.has_on_success_callback,
            "has_on_failure_callback": dag.has_on_failure_callback,
            "has_sla_miss_callback": dag.sla_miss_callback is not None,
            "render_template_as_native_obj": dag.render_template_as_native_obj,
            "template_searchpath": to_jsonable(dag.template_searchpath),
            "user_defined_macros": sorted(dag.user_defined_macros or {}),
            "user_defined_filters": sorted(dag.user_defined_filters or {}),
            "default_view": dag.default_view,
            "orientation": dag.orientation,
            "tasks": tasks,
            "task_groups": _serialize_group(dag.task_group),
            "edges": _edges(dag),
        }
    except SerializationError:
        raise
    except Exception as err:
        raise SerializationError(
            f"Failed to serialize DAG {dag.dag_id!r}: {type(err).__name__}: {err}"
        ) from err


def canonical_json(serialized: Mapping[str, Any]) -> str:
    """The canonical JSON text of a serialized DAG (sorted keys, no spaces)."""
    return json.dumps(serialized, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dag_hash(serialized: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON."""
    return hashlib.sha256(canonical_json(serialized).encode("utf-8")).hexdigest()


def _find_group(tree: Mapping[str, Any], group_id: str) -> Mapping[str, Any] | None:
    if tree["group_id"] == group_id:
        return tree
    for child in tree["groups"]:
        found = _find_group(child, group_id)
        if found is not None:
            return found
    return None


def _mapped_groups_of(serialized_dag: Mapping[str, Any], task: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The mapped groups enclosing a task, outermost first."""
    path: list[Mapping[str, Any]] = []

    def walk(tree: Mapping[str, Any], trail: list[Mapping[str, Any]]) -> bool:
        trail = [*trail, tree] if tree["is_mapped"] else trail
        if task["task_id"] in tree["tasks"]:
            path.extend(trail)
            return True
        return any(walk(child, trail) for child in tree["groups"])

    walk(serialized_dag["task_groups"], [])
    return path


def mapping_inputs(serialized_dag: Mapping[str, Any], task_id: str) -> list[Mapping[str, Any]]:
    """The serialized expand inputs a task's map indexes come from: its enclosing mapped groups'
    (outermost first) then its own. Empty for a task that is not mapped."""
    task = next(t for t in serialized_dag["tasks"] if t["task_id"] == task_id)
    inputs = [g["expand_input"] for g in _mapped_groups_of(serialized_dag, task)]
    if task["is_mapped"]:
        inputs.append(task["expand_input"])
    return inputs


def mapped_length(
    serialized_dag: Mapping[str, Any], task_id: str, upstream_lengths: Mapping[str, int]
) -> int | None:
    """The number of map indexes of a task (None: not mapped), from the serialized DAG and the lengths of
    the upstream XComs it maps over (see mappedoperator.get_mapped_length). Raises NotFullyPopulated while
    an upstream length is unknown."""
    from tradewind.sdk.mappedoperator import get_mapped_length

    inputs = mapping_inputs(serialized_dag, task_id)
    if not inputs:
        return None
    return math.prod(get_mapped_length(expand_input, upstream_lengths) for expand_input in inputs)


def mapping_upstreams(serialized_dag: Mapping[str, Any], task_id: str) -> list[str]:
    """The upstream task ids whose lengths `mapped_length` needs for `task_id`."""
    from tradewind.sdk.mappedoperator import mapping_references

    found: list[str] = []
    for expand_input in mapping_inputs(serialized_dag, task_id):
        for upstream in mapping_references(expand_input):
            if upstream not in found:
                found.append(upstream)
    return found
