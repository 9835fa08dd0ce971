"""Dynamic task mapping: `Operator.partial(...).expand(...)` / `.expand_kwargs(...)` build a MappedOperator,
which stands in the DAG for all its map indexes and is turned into one real operator per index at run time.

Run time (inside the task runner), for a MappedOperator `task` and the context of map index i:
    kwargs = task.expand_input.resolve(context)     # this index's mapped arguments (pulls XComs)
    operator = task.unmap(kwargs)                   # a real BaseOperator, not registered in the DAG
or in one call `task.unmap_with_context(context)`.

Scheduler (no DAG code): `get_mapped_length(serialized["expand_input"], upstream_lengths)` gives the number
of map indexes; see serialization.mapped_length for tasks inside mapped task groups.

Serialized expand input:
    {"kind": "product", "args": {name: <arg>}}       expand(): one index per combination (last arg varies fastest)
    {"kind": "list_of_dicts", "arg": <arg>}          expand_kwargs(): one index per dict
    <arg> = {"literal": <JSON-safe value>, "length": n}
          | {"xcom": {"task_id", "key"}, "upstream_mapped": bool}
          | {"map": <arg>} | {"zip": [<arg>...], "fillvalue": bool} | {"concat": [<arg>...]}
          | {"unresolvable": repr}
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tradewind.sdk.baseoperator import (
    DEFAULT_OWNER,
    DEFAULT_POOL_NAME,
    AbstractOperator,
    BaseOperator,
    as_list,
    coerce_retries,
    coerce_timedelta,
    get_merged_defaults,
    init_param_names,
    record_new_task,
)
from tradewind.sdk.dag import DagContext
from tradewind.sdk.exceptions import NotFullyPopulated, UnmappableXComTypePushed
from tradewind.sdk.params import ParamsDict
from tradewind.sdk.taskgroup import TaskGroup, TaskGroupContext, validate_key
from tradewind.sdk.timetables import coerce_utc
from tradewind.sdk.trigger_rule import normalize_trigger_rule
from tradewind.sdk.weight_rule import normalize_weight_rule
from tradewind.sdk.xcom_arg import XCOM_RETURN_KEY, MappedArgument, PlainXComArg, ResolveMixin, XComArg

if TYPE_CHECKING:
    from tradewind.sdk.dag import DAG


def is_mappable_value(value: Any) -> bool:
    """Whether `value` can be mapped over: a list/tuple/dict literal, an XComArg or a MappedArgument."""
    if isinstance(value, XComArg | MappedArgument):
        return True
    return isinstance(value, Sequence | Mapping) and not isinstance(value, str | bytes)


def _check_return_value_xcom(value: Any) -> None:
    if isinstance(value, PlainXComArg) and value.key != XCOM_RETURN_KEY:
        raise ValueError(f"cannot map over XCom with custom key {value.key!r} from {value.operator}")


def _serialize_arg(value: Any) -> dict[str, Any]:
    from tradewind.sdk.serialization import to_jsonable

    if isinstance(value, XComArg):
        return value.serialize()
    if isinstance(value, ResolveMixin):
        return {"unresolvable": repr(value)}
    return {"literal": to_jsonable(value), "length": len(value)}


def _item_at(value: Any, index: int) -> Any:
    if isinstance(value, Mapping):
        return list(value.items())[index]
    return value[index]


def _require_mappable(value: Any) -> int:
    if value is None or isinstance(value, str | bytes) or not isinstance(value, Sequence | Mapping):
        raise UnmappableXComTypePushed(value)
    return len(value)


class DictOfListsExpandInput:
    """expand(**kwargs): one map index per combination of the kwargs' items."""

    kind = "product"

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value

    def iter_references(self) -> Iterator[tuple[Any, str]]:
        """(operator, key) pairs the input reads."""
        for item in self.value.values():
            yield from XComArg.iter_xcom_references(item)

    def get_parse_time_mapped_ti_count(self) -> int | None:
        """The number of map indexes when every input is a literal, else None."""
        if any(isinstance(v, ResolveMixin) for v in self.value.values()):
            return None
        return math.prod(len(v) for v in self.value.values())

    def resolve(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments of the task instance in `context` (its `ti.map_index`)."""
        map_index = context["ti"].map_index
        if map_index is None or map_index < 0:
            raise RuntimeError("can't resolve task-mapping argument without expanding")
        resolved = {
            k: v.resolve(context) if isinstance(v, ResolveMixin) else v for k, v in self.value.items()
        }
        lengths = {k: _require_mappable(v) for k, v in resolved.items()}
        total = math.prod(lengths.values())
        if map_index >= total:
            raise IndexError(f"map index {map_index} is over mapped length {total}")
        result: dict[str, Any] = {}
        index = map_index
        for key in reversed(list(resolved)):
            index, position = divmod(index, lengths[key])
            result[key] = _item_at(resolved[key], position)
        return {key: result[key] for key in resolved}

    def serialize(self) -> dict[str, Any]:
        """JSON form (see the module docstring)."""
        return {"kind": self.kind, "args": {k: _serialize_arg(v) for k, v in self.value.items()}}


class ListOfDictsExpandInput:
    """expand_kwargs(list_of_dicts): one map index per dict."""

    kind = "list_of_dicts"

    def __init__(self, value: Any) -> None:
        self.value = value

    @classmethod
    def checked(cls, value: Any) -> ListOfDictsExpandInput:
        """Validate an expand_kwargs() argument: an XComArg, or a list of dicts / XComArgs."""
        if isinstance(value, XComArg):
            _check_return_value_xcom(value)
        elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
            for item in value:
                if not isinstance(item, XComArg | Mapping):
                    raise TypeError(f"expected XComArg or list[dict], not {type(value).__name__}")
        else:
            raise TypeError(f"expected XComArg or list[dict], not {type(value).__name__}")
        return cls(value)

    def iter_references(self) -> Iterator[tuple[Any, str]]:
        """(operator, key) pairs the input reads."""
        yield from XComArg.iter_xcom_references(self.value)

    def get_parse_time_mapped_ti_count(self) -> int | None:
        """The number of map indexes when the list is a literal, else None."""
        return None if isinstance(self.value, ResolveMixin) else len(self.value)

    def resolve(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments of the task instance in `context` (its `ti.map_index`)."""
        map_index = context["ti"].map_index
        if map_index is None or map_index < 0:
            raise RuntimeError("can't resolve task-mapping argument without expanding")
        if isinstance(self.value, ResolveMixin):
            mappings = self.value.resolve(context)
            if not isinstance(mappings, Sequence) or isinstance(mappings, str):
                raise ValueError(f"expand_kwargs() expects a list[dict], not {type(mappings).__name__}")
            mapping = mappings[map_index]
        else:
            mapping = self.value[map_index]
            if isinstance(mapping, ResolveMixin):
                mapping = mapping.resolve(context)
        if not isinstance(mapping, Mapping):
            raise ValueError(f"expand_kwargs() expects a list[dict], not list[{type(mapping).__name__}]")
        for key in mapping:
            if not isinstance(key, str):
                raise ValueError(
                    f"expand_kwargs() input dict keys must all be str, but {key!r} is of type {type(key).__name__}"
                )
        return {k: v.resolve(context) if isinstance(v, ResolveMixin) else v for k, v in mapping.items()}

    def serialize(self) -> dict[str, Any]:
        """JSON form (see the module docstring)."""
        return {"kind": self.kind, "arg": _serialize_arg(self.value)}


ExpandInput = DictOfListsExpandInput | ListOfDictsExpandInput


def _arg_length(spec: Mapping[str, Any], upstream_lengths: Mapping[str, int], missing: set[str]) -> int:
    if "literal" in spec:
        return int(spec["length"])
    if "xcom" in spec:
        task_id = spec["xcom"]["task_id"]
        if task_id not in upstream_lengths:
            missing.add(task_id)
            return 0
        return int(upstream_lengths[task_id])
    if "map" in spec:
        return _arg_length(spec["map"], upstream_lengths, missing)
    if "zip" in spec:
        lengths = [_arg_length(s, upstream_lengths, missing) for s in spec["zip"]]
        return max(lengths) if spec.get("fillvalue") else min(lengths)
    if "concat" in spec:
        return sum(_arg_length(s, upstream_lengths, missing) for s in spec["concat"])
    raise ValueError(f"cannot compute the length of mapped argument {spec!r}")


def mapping_references(expand_input: Mapping[str, Any]) -> list[str]:
    """Upstream task ids whose lengths `get_mapped_length` needs, in a stable order."""
    found: list[str] = []

    def walk(spec: Mapping[str, Any]) -> None:
        if "xcom" in spec and spec["xcom"]["task_id"] not in found:
            found.append(spec["xcom"]["task_id"])
        for key in ("map",):
            if key in spec:
                walk(spec[key])
        for key in ("zip", "concat"):
            for sub in spec.get(key, ()):
                walk(sub)

    if expand_input["kind"] == "product":
        for spec in expand_input["args"].values():
            walk(spec)
    else:
        walk(expand_input["arg"])
    return found


def get_mapped_length(expand_input: Mapping[str, Any], upstream_lengths: Mapping[str, int]) -> int:
    """The number of map indexes of a serialized expand input.

    `upstream_lengths[task_id]` is, for an upstream that is not mapped, len() of the XCom value it pushed
    (a list or dict); for a mapped upstream, the number of its map indexes that pushed a value. Raises
    NotFullyPopulated naming the upstream tasks whose lengths are still unknown."""
    missing: set[str] = set()
    if expand_input["kind"] == "product":
        lengths = [_arg_length(spec, upstream_lengths, missing) for spec in expand_input["args"].values()]
        total = math.prod(lengths)
    elif expand_input["kind"] == "list_of_dicts":
        total = _arg_length(expand_input["arg"], upstream_lengths, missing)
    else:
        raise ValueError(f"unknown expand input kind {expand_input['kind']!r}")
    if missing:
        raise NotFullyPopulated(missing)
    return total


class OperatorPartial:
    """An operator class with its non-mapped arguments fixed; `.expand(...)` / `.expand_kwargs(...)` make
    the MappedOperator."""

    def __init__(
        self,
        *,
        operator_class: type[BaseOperator],
        kwargs: dict[str, Any],
        explicit: set[str],
        params: ParamsDict,
    ) -> None:
        self.operator_class = operator_class
        self.kwargs = kwargs
        self._explicit = explicit
        self.params = params

    @classmethod
    def create(cls, operator_class: type[BaseOperator], kwargs: dict[str, Any]) -> OperatorPartial:
        """Validate `Op.partial(**kwargs)` and apply the DAG's and groups' default_args."""
        kwargs = dict(kwargs)
        if "task_id" not in kwargs:
            raise TypeError("partial() missing 1 required keyword-only argument: 'task_id'")
        names = init_param_names(operator_class)
        for name in kwargs:
            if name not in names:
                raise TypeError(
                    f"{operator_class.__name__}.partial() got an unexpected keyword argument {name!r}"
                )
        label = kwargs.pop("task_id")
        validate_key(label)
        dag = kwargs.pop("dag", None) or DagContext.get_current()
        task_group = kwargs.pop("task_group", None) or (TaskGroupContext.get_current(dag) if dag else None)
        default_args, params = get_merged_defaults(
            dag, task_group, kwargs.pop("params", None), kwargs.pop("default_args", None)
        )
        explicit = set(kwargs)
        for name in _BASE_ATTRIBUTES:
            if name not in kwargs and name in default_args:
                kwargs[name] = default_args[name]
        task_id = task_group.child_id(label) if task_group is not None else label
        return cls(
            operator_class=operator_class,
            kwargs={"task_id": task_id, "dag": dag, "task_group": task_group, **kwargs},
            explicit=explicit,
            params=params,
        )

    def expand(self, **mapped_kwargs: Any) -> MappedOperator:
        """One task instance per combination of the given lists / dicts / XComArgs."""
        if not mapped_kwargs:
            raise TypeError("no arguments to expand against")
        names = init_param_names(self.operator_class)
        cls_name = self.operator_class.__name__
        unknown = [name for name in mapped_kwargs if name not in names]
        if len(unknown) == 1:
            raise TypeError(f"{cls_name}.expand() got an unexpected keyword argument {unknown[0]!r}")
        if unknown:
            raise TypeError(
                f"{cls_name}.expand() got unexpected keyword arguments {', '.join(map(repr, unknown))}"
            )
        for name, value in mapped_kwargs.items():
            if not is_mappable_value(value):
                raise ValueError(
                    f"{cls_name}.expand() got an unexpected type {type(value).__name__!r} for keyword argument {name}"
                )
            _check_return_value_xcom(value)
        duplicated = sorted((self._explicit | {"task_id", "dag", "task_group"}) & set(mapped_kwargs))
        if duplicated:
            raise TypeError(
                f"unmappable or already specified argument{'s' if len(duplicated) > 1 else ''}: {', '.join(duplicated)}"
            )
        return self._expand(DictOfListsExpandInput(mapped_kwargs))

    def expand_kwargs(self, kwargs: Any, *, strict: bool = True) -> MappedOperator:
        """One task instance per dict of arguments (a list of dicts, or an XComArg giving one)."""
        return self._expand(ListOfDictsExpandInput.checked(kwargs))

    def _expand(self, expand_input: ExpandInput, *, mapped_kwargs_field: str | None = None) -> MappedOperator:
        """Build the MappedOperator; with `mapped_kwargs_field` (e.g. "op_kwargs" for @task functions) the
        mapped values are merged into that dict argument instead of being top-level arguments."""
        kwargs = dict(self.kwargs)
        task_id = kwargs.pop("task_id")
        dag = kwargs.pop("dag")
        task_group = kwargs.pop("task_group")
        return MappedOperator(
            operator_class=self.operator_class,
            partial_kwargs=kwargs,
            expand_input=expand_input,
            task_id=task_id,
            dag=dag,
            task_group=task_group,
            params=self.params,
            mapped_kwargs_field=mapped_kwargs_field,
        )


def _base_defaults() -> dict[str, Any]:
    init = BaseOperator.__dict__["__init__"].__wrapped__
    return {
        name: p.default
        for name, p in inspect.signature(init).parameters.items()
        if p.default is not p.empty and p.kind is p.KEYWORD_ONLY
    }


_BASE_DEFAULTS = _base_defaults()
_BASE_ATTRIBUTES = tuple(
    name for name in _BASE_DEFAULTS if name not in ("dag", "task_group", "params", "default_args")
)


class MappedOperator(AbstractOperator):
    """A task that runs once per map index; holds the operator class, the fixed (partial) arguments and
    the expand input. Its scheduling attributes (retries, pool, trigger_rule...) come from the partial
    arguments, defaulted as BaseOperator defaults them."""

    is_mapped = True

    def __init__(
        self,
        *,
        operator_class: type[BaseOperator],
        partial_kwargs: dict[str, Any],
        expand_input: ExpandInput,
        task_id: str,
        dag: DAG | None,
        task_group: TaskGroup | None,
        params: ParamsDict,
        mapped_kwargs_field: str | None = None,
    ) -> None:
        self.operator_class = operator_class
        self.partial_kwargs = partial_kwargs
        self.expand_input = expand_input
        self.mapped_kwargs_field = mapped_kwargs_field
        self.task_id = task_id
        self.params = params
        self.template_fields = tuple(operator_class.template_fields)
        self.template_ext = tuple(operator_class.template_ext)
        self.template_fields_renderers = dict(operator_class.template_fields_renderers)
        self.ui_color = operator_class.ui_color
        self.ui_fgcolor = operator_class.ui_fgcolor
        self.operator_extra_links = operator_class.operator_extra_links
        self.custom_operator_name = getattr(operator_class, "custom_operator_name", None)
        self._is_empty = getattr(operator_class, "_is_empty", False)
        self._apply_scheduling_attributes(partial_kwargs)
        self.upstream_task_ids: set[str] = set()
        self.downstream_task_ids: set[str] = set()
        self._is_setup = False
        self._is_teardown = False
        self._on_failure_fail_dagrun = bool(partial_kwargs.get("on_failure_fail_dagrun", False))
        self._dag = None
        self.task_group = None
        if task_group is not None:
            task_group.add(self)
        if dag is not None:
            self.dag = dag
        for operator, _ in expand_input.iter_references():
            self.set_upstream(operator)
        for name in self.template_fields:
            if name in partial_kwargs:
                XComArg.apply_upstream_relationship(self, partial_kwargs[name])
        record_new_task(self)

    def _apply_scheduling_attributes(self, kwargs: Mapping[str, Any]) -> None:
        def get(name: str) -> Any:
            return kwargs.get(name, _BASE_DEFAULTS[name])

        self.owner = get("owner") or DEFAULT_OWNER
        self.email = get("email")
        self.email_on_retry = get("email_on_retry")
        self.email_on_failure = get("email_on_failure")
        self.retries = coerce_retries(get("retries"))
        self.retry_delay = coerce_timedelta(get("retry_delay"), "retry_delay") or timedelta(0)
        self.retry_exponential_backoff = get("retry_exponential_backoff")
        self.max_retry_delay = coerce_timedelta(get("max_retry_delay"), "max_retry_delay")
        self.start_date = coerce_utc(get("start_date"))
        self.end_date = coerce_utc(get("end_date"))
        self.depends_on_past = bool(get("depends_on_past")) or bool(get("wait_for_downstream"))
        self.ignore_first_depends_on_past = get("ignore_first_depends_on_past")
        self.wait_for_past_depends_before_skipping = get("wait_for_past_depends_before_skipping")
        self.wait_for_downstream = get("wait_for_downstream")
        self.priority_weight = get("priority_weight")
        self.weight_rule = normalize_weight_rule(get("weight_rule"))
        self.queue = get("queue")
        pool = get("pool")
        self.pool = DEFAULT_POOL_NAME if pool is None else pool
        self.pool_slots = get("pool_slots")
        self.sla = coerce_timedelta(get("sla"), "sla")
        self.execution_timeout = get("execution_timeout")
        for name in (
            "on_execute_callback",
            "on_failure_callback",
            "on_success_callback",
            "on_retry_callback",
            "on_skipped_callback",
        ):
            setattr(self, name, get(name))
        self.trigger_rule = normalize_trigger_rule(get("trigger_rule"))
        self.resources = get("resources")
        self.run_as_user = get("run_as_user")
        self.max_active_tis_per_dag = get("max_active_tis_per_dag") or get("task_concurrency")
        self.max_active_tis_per_dagrun = get("max_active_tis_per_dagrun")
        self.map_index_template = get("map_index_template")
        self.executor = get("executor")
        self.executor_config = get("executor_config") or {}
        self.do_xcom_push = get("do_xcom_push")
        self.multiple_outputs = get("multiple_outputs")
        self.inlets = as_list(get("inlets"))
        self.outlets = as_list(get("outlets"))
        for name in ("doc", "doc_md", "doc_json", "doc_yaml", "doc_rst", "task_display_name"):
            setattr(self, name, get(name))

    @property
    def task_type(self) -> str:
        return self.operator_class.__name__

    def get_parse_time_mapped_ti_count(self) -> int | None:
        """The number of map indexes if it is known without running anything, else None."""
        return self.expand_input.get_parse_time_mapped_ti_count()

    def resolve_expand_input(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """This map index's mapped arguments (`context["ti"].map_index`), pulling XComs as needed."""
        return self.expand_input.resolve(context)

    def unmap(self, resolved_kwargs: Mapping[str, Any] | None) -> BaseOperator:
        """A real operator for one map index: the partial arguments plus `resolved_kwargs`. It has this
        task's id, DAG, group and relatives but is not registered in the DAG."""
        kwargs = dict(self.partial_kwargs)
        if resolved_kwargs:
            if self.mapped_kwargs_field is not None:
                kwargs[self.mapped_kwargs_field] = {
                    **(kwargs.get(self.mapped_kwargs_field) or {}),
                    **resolved_kwargs,
                }
            else:
                kwargs.update(resolved_kwargs)
        operator = self.operator_class(
            task_id=self.label,
            dag=self._dag,
            task_group=self.task_group,
            params=self.params,
            _airflow_from_mapped=True,
            **kwargs,
        )
        state = operator.__dict__
        state["task_id"] = self.task_id
        state["upstream_task_ids"] = set(self.upstream_task_ids)
        state["downstream_task_ids"] = set(self.downstream_task_ids)
        state["_is_setup"] = self._is_setup
        state["_is_teardown"] = self._is_teardown
        state["_on_failure_fail_dagrun"] = self._on_failure_fail_dagrun
        state["trigger_rule"] = self.trigger_rule
        state["start_date"] = self.start_date
        state["end_date"] = self.end_date
        return operator

    def unmap_with_context(self, context: Mapping[str, Any]) -> BaseOperator:
        """resolve_expand_input + unmap, for the task instance in `context`."""
        return self.unmap(self.resolve_expand_input(context))
