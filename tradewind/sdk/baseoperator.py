"""BaseOperator: every Airflow operator argument, default_args handling, dependencies and their helpers
(chain, cross_downstream, chain_linear), setup/teardown, and partial()/expand() task mapping.

default_args: each level of an operator class hierarchy gets, for the keyword arguments its own
``__init__`` declares and the caller did not pass, the value from the merged default_args — the DAG's,
overridden by the enclosing task groups', overridden by the operator's own ``default_args=``. Params are
merged the same way: DAG params < the operator's ``params=`` < ``default_args["params"]``.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from tradewind.sdk.dag import DagContext
from tradewind.sdk.edges import DependencyMixin, EdgeModifier, iter_nodes
from tradewind.sdk.exceptions import (
    AirflowException,
    AirflowTypeError,
    TaskDeferralError,
    TaskDeferred,
    TaskNotFound,
)
from tradewind.sdk.params import NOTSET, ArgNotSet, ParamsDict
from tradewind.sdk.taskgroup import MappedTaskGroup, TaskGroup, TaskGroupContext, validate_key
from tradewind.sdk.templater import Templater
from tradewind.sdk.timetables import coerce_utc
from tradewind.sdk.trigger_rule import TriggerRule, normalize_trigger_rule
from tradewind.sdk.weight_rule import WeightRule, normalize_weight_rule
from tradewind.sdk.xcom_arg import XComArg

if TYPE_CHECKING:
    from tradewind.sdk.dag import DAG
    from tradewind.sdk.mappedoperator import OperatorPartial

DEFAULT_OWNER = "airflow"
DEFAULT_POOL_NAME = "default_pool"
DEFAULT_QUEUE = "default"
DEFAULT_RETRIES = 0
DEFAULT_RETRY_DELAY = timedelta(seconds=300)
DEFAULT_PRIORITY_WEIGHT = 1
DEFAULT_WEIGHT_RULE = WeightRule.DOWNSTREAM
DEFAULT_TRIGGER_RULE = TriggerRule.ALL_SUCCESS

TaskStateChangeCallback = Callable[[Mapping[str, Any]], None]


# ---------------------------------------------------------------------------------------------------------
# Argument normalisation shared by BaseOperator and MappedOperator


def coerce_timedelta(value: Any, name: str) -> timedelta | None:
    """A timedelta from a timedelta or a number of seconds (None stays None)."""
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AirflowTypeError(
            f"{name} must be a timedelta or a number of seconds, not {type(value).__name__}"
        )
    return timedelta(seconds=value)


def coerce_retries(retries: Any) -> int:
    """The number of retries as an int (None means 0); AirflowException for a non-number."""
    if retries is None:
        return 0
    if isinstance(retries, int):
        return retries
    try:
        return int(retries)
    except (TypeError, ValueError):
        raise AirflowTypeError(f"'retries' type must be int, not {type(retries).__name__}") from None


def as_list(value: Any) -> list[Any]:
    """None -> [], a list -> a copy, anything else -> [value] (inlets, outlets, callbacks)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def get_merged_defaults(
    dag: DAG | None,
    task_group: TaskGroup | None,
    task_params: Mapping[str, Any] | None,
    task_default_args: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], ParamsDict]:
    """(default_args, params) an operator sees: DAG < task group < the operator's own, as Airflow merges."""
    if dag is None:
        args: dict[str, Any] = {}
        params = ParamsDict()
    else:
        args = dict(dag.default_args)
        params = copy.copy(dag.params)
        if task_group is not None and task_group.default_args:
            if not isinstance(task_group.default_args, Mapping):
                raise TypeError(f"default_args must be a mapping, got {type(task_group.default_args)}")
            args.update(task_group.default_args)
    if task_params:
        if not isinstance(task_params, Mapping):
            raise TypeError(f"params must be a mapping, got {type(task_params)}")
        params.update(task_params)
    if task_default_args:
        if not isinstance(task_default_args, Mapping):
            raise TypeError(f"default_args must be a mapping, got {type(task_default_args)}")
        args.update(task_default_args)
        if task_default_args.get("params"):
            params.update(task_default_args["params"])
    return args, params


# ---------------------------------------------------------------------------------------------------------
# Setup / teardown context managers (`with setup >> teardown:`)


class _SetupTeardownFrame:
    def __init__(self, setups: list[Any], teardowns: list[Any]) -> None:
        self.setups = setups
        self.teardowns = teardowns
        self.tasks: list[Any] = []


_SETUP_TEARDOWN_FRAMES: list[_SetupTeardownFrame] = []


def record_new_task(task: Any) -> None:
    """Tell an open setup/teardown context about a task created inside it."""
    if _SETUP_TEARDOWN_FRAMES:
        _SETUP_TEARDOWN_FRAMES[-1].tasks.append(task)


# ---------------------------------------------------------------------------------------------------------


class AbstractOperator(DependencyMixin):
    """What BaseOperator and MappedOperator share: the graph node (ids, DAG, group, edges), setup/teardown
    flags and the relatives queries.

    Subclasses set `task_id`, `upstream_task_ids`, `downstream_task_ids`, `_dag`, `task_group`,
    `trigger_rule`, `_is_setup`, `_is_teardown` and `_on_failure_fail_dagrun`."""

    is_mapped: ClassVar[bool] = False
    ui_color: str = "#fff"
    ui_fgcolor: str = "#000"
    operator_extra_links: Sequence[Any] = ()

    task_id: str
    upstream_task_ids: set[str]
    downstream_task_ids: set[str]
    task_group: TaskGroup | None
    trigger_rule: TriggerRule
    _dag: DAG | None
    _is_setup: bool
    _is_teardown: bool
    _on_failure_fail_dagrun: bool

    # -- identity

    @property
    def node_id(self) -> str:
        """The task id (a task's id in the DAG's graph)."""
        return self.task_id

    @property
    def label(self) -> str:
        """The task id without the group prefix."""
        group = self.task_group
        if group is not None and group.prefix_group_id and group.group_id:
            prefix = f"{group.group_id}."
            if self.task_id.startswith(prefix):
                return self.task_id[len(prefix) :]
        return self.task_id

    @property
    def task_type(self) -> str:
        """The operator's class name."""
        return type(self).__name__

    @property
    def operator_name(self) -> str:
        """The name shown for the operator (custom_operator_name, else the class name)."""
        return getattr(self, "custom_operator_name", None) or self.task_type

    @property
    def inherits_from_empty_operator(self) -> bool:
        """Whether the operator is (a subclass of) EmptyOperator: nothing to run."""
        return getattr(self, "_is_empty", False) or any(
            c.__name__ == "EmptyOperator" for c in type(self).__mro__
        )

    # -- DAG membership

    @property
    def dag(self) -> DAG:
        """The DAG this task belongs to; AirflowException when it has none yet."""
        if self._dag is None:
            raise AirflowException(f"Operator {self} has not been assigned to a DAG yet")
        return self._dag

    @dag.setter
    def dag(self, dag: DAG | None) -> None:
        from tradewind.sdk.dag import DAG

        if dag is None:
            self._dag = None
            return
        if not isinstance(dag, DAG):
            raise TypeError(f"Expected DAG; received {dag.__class__.__name__}")
        if self._dag is not None and self._dag is not dag:
            raise AirflowException(f"The DAG assigned to {self} can not be changed.")
        if dag.task_dict.get(self.task_id) is not self:
            dag.add_task(self)
        self._dag = dag

    def has_dag(self) -> bool:
        """Whether the task belongs to a DAG."""
        return self._dag is not None

    def get_dag(self) -> DAG | None:
        """The DAG, or None."""
        return self._dag

    @property
    def dag_id(self) -> str:
        """The DAG's id ("adhoc_<owner>" when the task has no DAG, as Airflow says)."""
        if self._dag is not None:
            return self._dag.dag_id
        return f"adhoc_{getattr(self, 'owner', DEFAULT_OWNER)}"

    # -- relatives

    @property
    def roots(self) -> list[Any]:
        return [self]

    @property
    def leaves(self) -> list[Any]:
        return [self]

    def _set_relatives(self, others: Any, *, upstream: bool, edge_modifier: EdgeModifier | None) -> None:
        tasks: list[AbstractOperator] = []
        for node in iter_nodes(others):
            node.update_relative(self, not upstream, edge_modifier=edge_modifier)
            for task in node.leaves if upstream else node.roots:
                if not isinstance(task, AbstractOperator):
                    raise AirflowTypeError(
                        f"Relationships can only be set between Operators; received {type(task).__name__}"
                    )
                tasks.append(task)
        dag = self._dag
        for task in tasks:
            other = task._dag
            if other is None:
                continue
            if dag is None:
                dag = other
            elif other is not dag:
                raise AirflowException(
                    f"Tried to set relationships between tasks in more than one DAG: {[dag, other]}"
                )
        if dag is not None:
            for task in (self, *tasks):
                if task._dag is None:
                    task.dag = dag
        for task in tasks:
            if upstream:
                up, down = task, self
            else:
                up, down = self, task
            up.downstream_task_ids.add(down.node_id)
            down.upstream_task_ids.add(up.node_id)
            if edge_modifier is not None and dag is not None:
                edge_modifier.add_edge_info(dag, up.node_id, down.node_id)

    def set_upstream(self, task_or_task_list: Any, edge_modifier: EdgeModifier | None = None) -> None:
        """Make the given task(s) run before this one."""
        self._set_relatives(task_or_task_list, upstream=True, edge_modifier=edge_modifier)

    def set_downstream(self, task_or_task_list: Any, edge_modifier: EdgeModifier | None = None) -> None:
        """Make the given task(s) run after this one."""
        self._set_relatives(task_or_task_list, upstream=False, edge_modifier=edge_modifier)

    def _tasks_by_id(self, ids: Iterable[str]) -> list[AbstractOperator]:
        dag = self.dag
        try:
            return [dag.task_dict[task_id] for task_id in ids]
        except KeyError as err:
            raise TaskNotFound(f"Task {err.args[0]} not found") from None

    @property
    def upstream_list(self) -> list[AbstractOperator]:
        """Direct upstream tasks."""
        return self._tasks_by_id(self.upstream_task_ids)

    @property
    def downstream_list(self) -> list[AbstractOperator]:
        """Direct downstream tasks."""
        return self._tasks_by_id(self.downstream_task_ids)

    def get_direct_relative_ids(self, upstream: bool = False) -> set[str]:
        """Ids of the direct upstream (or downstream) tasks."""
        return self.upstream_task_ids if upstream else self.downstream_task_ids

    def get_direct_relatives(self, upstream: bool = False) -> list[AbstractOperator]:
        """The direct upstream (or downstream) tasks."""
        return self.upstream_list if upstream else self.downstream_list

    def get_flat_relative_ids(self, *, upstream: bool = False) -> set[str]:
        """Ids of every task reachable upstream (or downstream) of this one."""
        dag = self._dag
        if dag is None:
            return set()
        found: set[str] = set()
        stack = list(self.get_direct_relative_ids(upstream))
        while stack:
            task_id = stack.pop()
            if task_id in found:
                continue
            found.add(task_id)
            stack.extend(dag.task_dict[task_id].get_direct_relative_ids(upstream))
        return found

    def get_flat_relatives(self, upstream: bool = False) -> list[AbstractOperator]:
        """Every task reachable upstream (or downstream) of this one."""
        return self._tasks_by_id(self.get_flat_relative_ids(upstream=upstream))

    def get_upstreams_only_setups_and_teardowns(self) -> list[AbstractOperator]:
        """The setup tasks upstream of this task (transitively), and their teardowns."""
        result: dict[str, AbstractOperator] = {}
        for task in self.get_flat_relatives(upstream=True):
            if task.is_setup:
                result[task.task_id] = task
                for down in task.downstream_list:
                    if down.is_teardown and down is not self:
                        result[down.task_id] = down
        return list(result.values())

    @property
    def priority_weight_total(self) -> int:
        """The effective priority: own weight, plus the relatives' the weight rule counts."""
        rule = getattr(self, "weight_rule", DEFAULT_WEIGHT_RULE)
        own = int(getattr(self, "priority_weight", DEFAULT_PRIORITY_WEIGHT))
        if rule == WeightRule.ABSOLUTE or self._dag is None:
            return own
        if rule == WeightRule.DOWNSTREAM:
            relatives = self.get_flat_relatives(upstream=False)
        elif rule == WeightRule.UPSTREAM:
            relatives = self.get_flat_relatives(upstream=True)
        else:
            return own
        return own + sum(int(getattr(t, "priority_weight", DEFAULT_PRIORITY_WEIGHT)) for t in relatives)

    # -- output

    @property
    def output(self) -> XComArg:
        """A reference to this task's return value."""
        return XComArg(operator=self)

    # -- mapping

    def iter_mapped_task_groups(self) -> Iterable[MappedTaskGroup]:
        """The mapped task groups enclosing this task, innermost first."""
        group = self.task_group
        if group is None:
            return iter(())
        return group.iter_mapped_task_groups()

    def get_closest_mapped_task_group(self) -> MappedTaskGroup | None:
        """The innermost mapped task group enclosing this task, if any."""
        return next(iter(self.iter_mapped_task_groups()), None)

    def get_needs_expansion(self) -> bool:
        """Whether this task runs as several map indexes (mapped itself or in a mapped group)."""
        return self.is_mapped or self.get_closest_mapped_task_group() is not None

    # -- setup / teardown

    @property
    def is_setup(self) -> bool:
        """Whether this is a setup task."""
        return self._is_setup

    @is_setup.setter
    def is_setup(self, value: bool) -> None:
        self._is_setup = value

    @property
    def is_teardown(self) -> bool:
        """Whether this is a teardown task."""
        return self._is_teardown

    @is_teardown.setter
    def is_teardown(self, value: bool) -> None:
        self._is_teardown = value

    @property
    def on_failure_fail_dagrun(self) -> bool:
        """For a teardown: whether its failure fails the DAG run (teardown failures do not, by default)."""
        return self._on_failure_fail_dagrun

    @on_failure_fail_dagrun.setter
    def on_failure_fail_dagrun(self, value: bool) -> None:
        if value and not self._is_teardown:
            raise ValueError(
                f"Cannot set task on_failure_fail_dagrun for '{self.task_id}' because it is not a teardown task."
            )
        self._on_failure_fail_dagrun = value

    def as_setup(self) -> AbstractOperator:
        """Mark this task as a setup task; returns the task."""
        self._is_setup = True
        return self

    def as_teardown(self, *, setups: Any = NOTSET, on_failure_fail_dagrun: Any = NOTSET) -> AbstractOperator:
        """Mark this task as a teardown (trigger rule all_done_setup_success); `setups` become setup tasks
        upstream of it; returns the task."""
        self._is_teardown = True
        self.trigger_rule = TriggerRule.ALL_DONE_SETUP_SUCCESS
        if not isinstance(on_failure_fail_dagrun, ArgNotSet):
            self.on_failure_fail_dagrun = on_failure_fail_dagrun
        if not isinstance(setups, ArgNotSet):
            for setup in iter_nodes(setups):
                setup.as_setup()
                setup.set_downstream(self)
        return self

    def __enter__(self) -> AbstractOperator:
        if not self._is_setup and not self._is_teardown:
            raise AirflowException("Only setup/teardown tasks can be used as context managers.")
        has_dag = self._dag is not None
        setups = (
            [self] if self._is_setup else [t for t in (self.upstream_list if has_dag else []) if t.is_setup]
        )
        teardowns = (
            [self]
            if self._is_teardown
            else [t for t in (self.downstream_list if has_dag else []) if t.is_teardown]
        )
        _SETUP_TEARDOWN_FRAMES.append(_SetupTeardownFrame(setups, teardowns))
        return self

    def __exit__(self, *exc: object) -> None:
        frame = _SETUP_TEARDOWN_FRAMES.pop()
        excluded = {id(t) for t in (*frame.setups, *frame.teardowns)}
        tasks = [t for t in frame.tasks if id(t) not in excluded]
        ids = {t.node_id for t in tasks}
        roots = [t for t in tasks if t.upstream_task_ids.isdisjoint(ids)]
        leaves = [t for t in tasks if t.downstream_task_ids.isdisjoint(ids)]
        if roots:
            for setup in frame.setups:
                setup.set_downstream(roots)
        if leaves:
            for teardown in frame.teardowns:
                teardown.set_upstream(leaves)
        if _SETUP_TEARDOWN_FRAMES:
            _SETUP_TEARDOWN_FRAMES[-1].tasks.extend(frame.tasks)

    def __repr__(self) -> str:
        return f"<Task({self.task_type}): {self.task_id}>"


# ---------------------------------------------------------------------------------------------------------
# default_args application: each operator class's __init__ is wrapped once, at class creation.


class _InitSignature:
    """The keyword names an __init__ accepts and which of them are required."""

    def __init__(self, init: Callable[..., None]) -> None:
        parameters = list(inspect.signature(init).parameters.values())[1:]
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        self.names = tuple(p.name for p in parameters if p.kind in kinds)
        self.required = frozenset(p.name for p in parameters if p.kind in kinds and p.default is p.empty)
        self.takes_default_args = "default_args" in self.names or any(
            p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters
        )


def _apply_defaults(init: Callable[..., None]) -> Callable[..., None]:
    sig = _InitSignature(init)

    @functools.wraps(init)
    def wrapper(self: BaseOperator, *args: Any, **kwargs: Any) -> None:
        if args:
            raise AirflowTypeError("Use keyword arguments when initializing operators")
        state = self.__dict__
        outermost = "_tw_default_args" not in state
        if outermost:
            from_mapped = kwargs.pop("_airflow_from_mapped", False)
            dag = kwargs.get("dag") or DagContext.get_current()
            task_group = kwargs.get("task_group")
            if dag is not None and task_group is None:
                task_group = TaskGroupContext.get_current(dag)
            default_args, params = get_merged_defaults(
                dag, task_group, kwargs.pop("params", None), kwargs.pop("default_args", None)
            )
            state["_tw_default_args"] = default_args
            state["_from_mapped"] = from_mapped
            if params:
                kwargs["params"] = params
        else:
            kwargs.pop("default_args", None)
            default_args = state["_tw_default_args"]
        for name in sig.names:
            if name not in kwargs and name in default_args:
                kwargs[name] = default_args[name]
        missing = [name for name in sig.required if name not in kwargs]
        if missing:
            names = ", ".join(repr(name) for name in sorted(missing))
            raise AirflowTypeError(f"missing keyword argument{'s' if len(missing) > 1 else ''} {names}")
        if sig.takes_default_args:
            kwargs["default_args"] = default_args
        init(self, **kwargs)
        if outermost:
            self._post_init()

    wrapper.__tradewind_signature__ = sig  # type: ignore[attr-defined]
    return wrapper


def init_param_names(operator_class: type) -> list[str]:
    """Every keyword argument the operator class's __init__ chain declares (its own first)."""
    names: list[str] = []
    seen: set[str] = set()
    for klass in operator_class.__mro__:
        sig = getattr(klass.__dict__.get("__init__"), "__tradewind_signature__", None)
        if sig is None:
            continue
        for name in sig.names:
            if name not in seen:
                seen.add(name)
                names.append(name)
    return names


class BaseOperator(AbstractOperator, Templater):
    """The base of every operator, taking every argument Airflow's BaseOperator takes.

    Subclasses implement `execute(context)`; `template_fields` name the attributes rendered with Jinja
    before it runs. Unknown keyword arguments raise TypeError (an AirflowException too), positional
    arguments too. Creating an operator inside ``with DAG(...)`` / ``with TaskGroup(...)`` adds it there.
    """

    template_fields: Sequence[str] = ()
    template_ext: Sequence[str] = ()
    template_fields_renderers: dict[str, str] = {}
    ui_color: str = "#fff"
    ui_fgcolor: str = "#000"
    shallow_copy_attrs: Sequence[str] = ()
    operator_extra_links: Sequence[Any] = ()
    supports_lineage: bool = False
    start_trigger_args: Any = None
    start_from_trigger: bool = False
    custom_operator_name: str | None = None
    # deepcopy keeps these references (the graph a copy still belongs to) and copies these shallowly.
    _shared_attrs: ClassVar[tuple[str, ...]] = ("_dag", "task_group")
    _base_shallow_copy_attrs: ClassVar[tuple[str, ...]] = (
        "on_execute_callback",
        "on_failure_callback",
        "on_success_callback",
        "on_retry_callback",
        "on_skipped_callback",
        "python_callable",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _apply_defaults(cls.__dict__["__init__"])  # type: ignore[method-assign]
        if isinstance(cls.__dict__.get("template_fields"), str):
            cls.template_fields = (cls.__dict__["template_fields"],)

    def __init__(
        self,
        *,
        task_id: str,
        owner: str = DEFAULT_OWNER,
        email: str | Iterable[str] | None = None,
        email_on_retry: bool = True,
        email_on_failure: bool = True,
        retries: int | None = DEFAULT_RETRIES,
        retry_delay: timedelta | float = DEFAULT_RETRY_DELAY,
        retry_exponential_backoff: bool | float = False,
        max_retry_delay: timedelta | float | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        depends_on_past: bool = False,
        ignore_first_depends_on_past: bool = True,
        wait_for_past_depends_before_skipping: bool = False,
        wait_for_downstream: bool = False,
        dag: DAG | None = None,
        params: Mapping[str, Any] | None = None,
        default_args: dict[str, Any] | None = None,
        priority_weight: int = DEFAULT_PRIORITY_WEIGHT,
        weight_rule: str | WeightRule = DEFAULT_WEIGHT_RULE,
        queue: str = DEFAULT_QUEUE,
        pool: str | None = None,
        pool_slots: int = 1,
        sla: timedelta | None = None,
        execution_timeout: timedelta | None = None,
        on_execute_callback: TaskStateChangeCallback | list[TaskStateChangeCallback] | None = None,
        on_failure_callback: TaskStateChangeCallback | list[TaskStateChangeCallback] | None = None,
        on_success_callback: TaskStateChangeCallback | list[TaskStateChangeCallback] | None = None,
        on_retry_callback: TaskStateChangeCallback | list[TaskStateChangeCallback] | None = None,
        on_skipped_callback: TaskStateChangeCallback | list[TaskStateChangeCallback] | None = None,
        pre_execute: Callable[[Any], None] | None = None,
        post_execute: Callable[[Any, Any], None] | None = None,
        trigger_rule: str | TriggerRule = DEFAULT_TRIGGER_RULE,
        resources: dict[str, Any] | None = None,
        run_as_user: str | None = None,
        task_concurrency: int | None = None,
        map_index_template: str | None = None,
        max_active_tis_per_dag: int | None = None,
        max_active_tis_per_dagrun: int | None = None,
        executor: str | None = None,
        executor_config: dict[str, Any] | None = None,
        do_xcom_push: bool = True,
        multiple_outputs: bool = False,
        inlets: Any | None = None,
        outlets: Any | None = None,
        task_group: TaskGroup | None = None,
        doc: str | None = None,
        doc_md: str | None = None,
        doc_json: str | None = None,
        doc_yaml: str | None = None,
        doc_rst: str | None = None,
        task_display_name: str | None = None,
        logger_name: str | None = None,
        allow_nested_operators: bool = True,
        on_failure_fail_dagrun: bool = False,
        start_from_trigger: bool = False,
        start_trigger_args: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise AirflowTypeError(
                f"Invalid arguments were passed to {type(self).__name__} (task_id: {task_id}). "
                f"Invalid arguments were:\n**kwargs: {kwargs}"
            )
        validate_key(task_id)
        state = self.__dict__
        state.setdefault("_from_mapped", False)
        dag = dag or DagContext.get_current()
        if task_group is None and dag is not None:
            task_group = TaskGroupContext.get_current(dag)
        full_task_id = task_group.child_id(task_id) if task_group is not None else task_id
        if pool_slots < 1:
            dag_str = f" in dag {dag.dag_id}" if dag is not None else ""
            raise ValueError(f"pool slots for {full_task_id}{dag_str} cannot be less than 1")
        if execution_timeout is not None and not isinstance(execution_timeout, timedelta):
            raise ValueError(
                f"execution_timeout must be timedelta object but passed as type: {type(execution_timeout)}"
            )
        # Plain attributes go straight into __dict__: parsing creates thousands of operators, and
        # __setattr__ only matters for template fields assigned after construction.
        state.update(
            task_id=full_task_id,
            owner=owner,
            email=email,
            email_on_retry=email_on_retry,
            email_on_failure=email_on_failure,
            retries=coerce_retries(retries),
            retry_delay=coerce_timedelta(retry_delay, "retry_delay") or timedelta(0),
            retry_exponential_backoff=retry_exponential_backoff,
            max_retry_delay=coerce_timedelta(max_retry_delay, "max_retry_delay"),
            start_date=coerce_utc(start_date),
            end_date=coerce_utc(end_date),
            depends_on_past=depends_on_past or wait_for_downstream,
            ignore_first_depends_on_past=ignore_first_depends_on_past,
            wait_for_past_depends_before_skipping=wait_for_past_depends_before_skipping,
            wait_for_downstream=wait_for_downstream,
            params=ParamsDict(params),
            priority_weight=priority_weight,
            weight_rule=normalize_weight_rule(weight_rule),
            queue=queue,
            pool=DEFAULT_POOL_NAME if pool is None else pool,
            pool_slots=pool_slots,
            sla=coerce_timedelta(sla, "sla"),
            execution_timeout=execution_timeout,
            on_execute_callback=on_execute_callback,
            on_failure_callback=on_failure_callback,
            on_success_callback=on_success_callback,
            on_retry_callback=on_retry_callback,
            on_skipped_callback=on_skipped_callback,
            _pre_execute_hook=pre_execute,
            _post_execute_hook=post_execute,
            trigger_rule=normalize_trigger_rule(trigger_rule),
            resources=resources,
            run_as_user=run_as_user,
            max_active_tis_per_dag=max_active_tis_per_dag
            if max_active_tis_per_dag is not None
            else task_concurrency,
            max_active_tis_per_dagrun=max_active_tis_per_dagrun,
            map_index_template=map_index_template,
            executor=executor,
            executor_config=executor_config or {},
            do_xcom_push=do_xcom_push,
            multiple_outputs=multiple_outputs,
            inlets=as_list(inlets),
            outlets=as_list(outlets),
            doc=doc,
            doc_md=doc_md,
            doc_json=doc_json,
            doc_yaml=doc_yaml,
            doc_rst=doc_rst,
            task_display_name=task_display_name,
            logger_name=logger_name,
            allow_nested_operators=allow_nested_operators,
            upstream_task_ids=set(),
            downstream_task_ids=set(),
            _is_setup=False,
            _is_teardown=False,
            _on_failure_fail_dagrun=on_failure_fail_dagrun,
            _lock_for_execution=False,
            _dag=None,
            task_group=None,
        )
        if start_from_trigger:
            state["start_from_trigger"] = True
        if start_trigger_args is not None:
            state["start_trigger_args"] = start_trigger_args
        if state["_from_mapped"]:
            self._dag = dag
            self.task_group = task_group
            return
        if task_group is not None:
            task_group.add(self)
        if dag is not None:
            self.dag = dag

    def _post_init(self) -> None:
        """Runs once after the whole __init__ chain: XComArgs in template fields become dependencies."""
        if self._from_mapped:
            return
        self.set_xcomargs_dependencies()
        self.__dict__["_instantiated"] = True
        record_new_task(self)

    def __setattr__(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)
        state = self.__dict__
        if (
            state.get("_instantiated")
            and not state.get("_lock_for_execution")
            and key in self.template_fields
        ):
            self.set_xcomargs_dependencies()

    def set_xcomargs_dependencies(self) -> None:
        """Make the tasks behind XComArgs found in template fields upstream of this task."""
        for field in self.template_fields:
            value = getattr(self, field, None)
            if value:
                XComArg.apply_upstream_relationship(self, value)

    def __deepcopy__(self, memo: dict[int, Any]) -> BaseOperator:
        cls = type(self)
        result = cls.__new__(cls)
        memo[id(self)] = result
        shallow = set(cls.shallow_copy_attrs) | set(self._base_shallow_copy_attrs)
        for key, value in self.__dict__.items():
            if key in self._shared_attrs:
                copied = value
            elif key in shallow:
                copied = copy.copy(value)
            else:
                copied = copy.deepcopy(value, memo)
            object.__setattr__(result, key, copied)
        return result

    def prepare_for_execution(self) -> BaseOperator:
        """A shallow copy to run: attribute changes during execution do not touch the DAG's task."""
        other = copy.copy(self)
        other.__dict__["_lock_for_execution"] = True
        return other

    @property
    def log(self) -> logging.Logger:
        """The operator's logger."""
        name = (
            self.__dict__.get("logger_name")
            or f"airflow.task.operators.{type(self).__module__}.{type(self).__name__}"
        )
        return logging.getLogger(name)

    # -- execution hooks (the runner calls these)

    def execute(self, context: Any) -> Any:
        """Do the task's work; the return value is pushed as the return_value XCom."""
        raise NotImplementedError()

    def pre_execute(self, context: Any) -> None:
        """Runs right before execute (calls the `pre_execute=` hook if one was given)."""
        if self._pre_execute_hook is not None:
            self._pre_execute_hook(context)

    def post_execute(self, context: Any, result: Any = None) -> None:
        """Runs right after execute (calls the `post_execute=` hook if one was given)."""
        if self._post_execute_hook is not None:
            self._post_execute_hook(context, result)

    def on_kill(self) -> None:
        """Called when the task is being killed: clean up subprocesses or threads here."""

    def defer(
        self,
        *,
        trigger: Any,
        method_name: str,
        kwargs: dict[str, Any] | None = None,
        timeout: timedelta | float | None = None,
    ) -> None:
        """Suspend this task until `trigger` fires, then resume in `method_name` (raises TaskDeferred)."""
        raise TaskDeferred(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Any) -> Any:
        """Continue a deferred task: call `next_method(context, **next_kwargs)`; the special method
        "__fail__" (a trigger error or timeout) raises TaskDeferralError."""
        if next_method == "__fail__":
            next_kwargs = next_kwargs or {}
            traceback = next_kwargs.get("traceback")
            if traceback is not None:
                self.log.error("Trigger failed:\n%s", "\n".join(traceback))
            raise TaskDeferralError(next_kwargs.get("error", "Unknown"))
        return getattr(self, next_method)(context, **(next_kwargs or {}))

    def xcom_push(self, context: Any, key: str, value: Any, execution_date: datetime | None = None) -> None:
        """Push an XCom for the running task instance (Airflow 2's operator method)."""
        context["ti"].xcom_push(key=key, value=value)

    def xcom_pull(
        self,
        context: Any,
        task_ids: str | list[str] | None = None,
        dag_id: str | None = None,
        key: str = "return_value",
        include_prior_dates: bool | None = None,
    ) -> Any:
        """Pull an XCom through the running task instance (Airflow 2's operator method)."""
        return context["ti"].xcom_pull(
            task_ids=task_ids, dag_id=dag_id, key=key, include_prior_dates=bool(include_prior_dates)
        )

    def dry_run(self) -> None:
        """Log the template fields' values (Airflow's dry run)."""
        for field in self.template_fields:
            self.log.info("Rendering template for %s: %s", field, getattr(self, field, None))

    # -- mapping

    @classmethod
    def partial(cls, **kwargs: Any) -> OperatorPartial:
        """Fix the non-mapped arguments of a mapped task; `.expand(...)`/`.expand_kwargs(...)` then builds it."""
        from tradewind.sdk.mappedoperator import OperatorPartial

        return OperatorPartial.create(cls, kwargs)

    def expand_start_from_trigger(self, *, context: Any) -> bool:
        """Whether this (unmapped) task starts directly from its start trigger."""
        return self.start_from_trigger


BaseOperator.__init__ = _apply_defaults(BaseOperator.__dict__["__init__"])  # type: ignore[method-assign]


class BaseOperatorLink:
    """An extra link shown for a task (kept for DAG files that define operator links)."""

    name: ClassVar[str] = ""

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """The link's URL."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------------------
# Dependency helpers


def chain(*tasks: Any) -> None:
    """Chain tasks, groups, XComArgs or lists of them: ``chain(a, [b, c], d)`` is a >> [b, c] >> d, and two
    adjacent lists of equal length are chained pairwise (``chain([a, b], [c, d])`` is a >> c, b >> d)."""
    for up, down in zip(tasks, tasks[1:], strict=False):
        if isinstance(up, DependencyMixin):
            up.set_downstream(down)
            continue
        if isinstance(down, DependencyMixin):
            down.set_upstream(up)
            continue
        if not isinstance(up, Sequence) or not isinstance(down, Sequence):
            raise TypeError(f"Chain not supported between instances of {type(up)} and {type(down)}")
        if len(up) != len(down):
            raise AirflowException(
                f"Chain not supported for different length Iterable. Got {len(up)} and {len(down)}."
            )
        for up_item, down_item in zip(up, down, strict=True):
            up_item.set_downstream(down_item)


def cross_downstream(from_tasks: Sequence[Any], to_tasks: Any) -> None:
    """Make every task of `to_tasks` downstream of every task of `from_tasks`."""
    for task in from_tasks:
        task.set_downstream(to_tasks)


def chain_linear(*elements: Any) -> None:
    """Chain elements so that every task of one element is upstream of every task of the next."""
    if len(elements) < 2:
        raise ValueError("No dependencies were set. Did you forget to expand with `*`?")
    previous: Any = None
    for element in elements:
        if isinstance(element, DependencyMixin):
            element = [element]
        if previous is not None:
            for up in previous:
                up.set_downstream(element)
        previous = element
