"""DAG, the `@dag` decorator, and DagContext (the ``with DAG(...)`` stack and auto-registration).

Airflow 2 and Airflow 3 disagree on three defaults, so there are two flavours of the same class:

=========================  =============================  ===============================
                           `DAG` (Airflow 3, native)      `Airflow2DAG` (Airflow 2 paths)
=========================  =============================  ===============================
no schedule given          None (manual only)             timedelta(days=1)
`catchup` default          False                          True
cron / preset schedule     CronTriggerTimetable           CronDataIntervalTimetable
timedelta schedule         DeltaTriggerTimetable          DeltaDataIntervalTimetable
=========================  =============================  ===============================

`schedule_interval=` (an Airflow 2 argument) always gives the data-interval timetables. The compat layer
exports `Airflow2DAG` / `airflow2_dag` under the Airflow 2 import paths and `DAG` / `dag` under `airflow.sdk`.
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from tradewind.sdk.exceptions import (
    AirflowDagCycleException,
    AirflowException,
    AirflowValueError,
    DuplicateTaskIdFound,
    FailStopDagInvalidTriggerRule,
    ParamValidationError,
    TaskNotFound,
)
from tradewind.sdk.params import NOTSET, ArgNotSet, ParamsDict
from tradewind.sdk.taskgroup import TaskGroup, TaskGroupContext, validate_key

if TYPE_CHECKING:
    from tradewind.sdk.baseoperator import AbstractOperator
    from tradewind.sdk.timetables import Timetable
    from tradewind.sdk.xcom_arg import DagParam

TAG_MAX_LEN = 100
DEFAULT_MAX_ACTIVE_TASKS = 16
DEFAULT_MAX_ACTIVE_RUNS = 16


class DagContext:
    """The stack of DAGs opened with ``with DAG(...)``, and the DAGs registered while a DAG file ran.

    A DAG leaving a ``with`` block (or built by a called `@dag` function) while
    `current_autoregister_module_name` is set is recorded in `autoregistered_dags` with that module name
    (unless it was created with ``auto_register=False``)."""

    _stack: ClassVar[list[DAG]] = []
    autoregistered_dags: ClassVar[list[tuple[DAG, str]]] = []
    current_autoregister_module_name: ClassVar[str | None] = None

    @classmethod
    def push(cls, dag: DAG) -> None:
        """Make `dag` the current DAG."""
        cls._stack.append(dag)

    @classmethod
    def pop(cls) -> DAG | None:
        """Close the current DAG, registering it for the parser; returns it."""
        if not cls._stack:
            return None
        dag = cls._stack.pop()
        if cls.current_autoregister_module_name is not None and dag.auto_register:
            cls.autoregistered_dags.append((dag, cls.current_autoregister_module_name))
        return dag

    @classmethod
    def get_current(cls) -> DAG | None:
        """The innermost open DAG, or None."""
        return cls._stack[-1] if cls._stack else None

    push_context_managed_dag = push
    pop_context_managed_dag = pop
    get_current_dag = get_current


def topological_order(nodes: list[Any], upstream: Mapping[Any, Iterable[Any]]) -> list[Any]:
    """`nodes` ordered so each comes after its `upstream` ones (stable: ties keep the given order).

    Raises AirflowDagCycleException naming the nodes of one cycle."""
    position = {node: i for i, node in enumerate(nodes)}
    downstream: dict[Any, list[Any]] = {node: [] for node in nodes}
    pending = {node: 0 for node in nodes}
    for node in nodes:
        for up in set(upstream.get(node, ())):
            if up in position:
                downstream[up].append(node)
                pending[node] += 1
    import heapq

    ready = [position[node] for node in nodes if pending[node] == 0]
    heapq.heapify(ready)
    order: list[Any] = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        order.append(node)
        for down in downstream[node]:
            pending[down] -= 1
            if pending[down] == 0:
                heapq.heappush(ready, position[down])
    if len(order) != len(nodes):
        cycle = _find_cycle([n for n in nodes if pending[n] > 0], upstream)
        raise AirflowDagCycleException(" -> ".join(str(n) for n in cycle))
    return order


def _find_cycle(candidates: list[Any], upstream: Mapping[Any, Iterable[Any]]) -> list[Any]:
    """One cycle among `candidates` (each has an unresolved upstream), as a closed path."""
    remaining = set(candidates)
    start = candidates[0]
    path: list[Any] = []
    seen: dict[Any, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(up for up in sorted(upstream.get(node, ()), key=str) if up in remaining)
    cycle = path[seen[node] :] + [node]
    cycle.reverse()
    return cycle


def _caller_fileloc() -> str:
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not (name.startswith(("tradewind.sdk.", "airflow.")) or name == "airflow"):
            return frame.f_code.co_filename
        frame = frame.f_back  # type: ignore[assignment]
    return ""


def _validate_owner_links(owner_links: Mapping[str, str] | None) -> None:
    for owner, link in (owner_links or {}).items():
        parts = urlsplit(link)
        if parts.scheme == "mailto" and parts.path:
            continue
        if parts.scheme in ("http", "https") and parts.netloc:
            continue
        raise AirflowValueError(
            f"Wrong link format was used for the owner. Use a valid link \n Bad formatted links are: "
            f"{[(owner, link)]}"
        )


class DAG:
    """A workflow: tasks with dependencies, a schedule, and DAG-level settings (Airflow's DAG).

    Takes Airflow's arguments (Airflow 2 order, Airflow 3 keywords too). Use as a context manager so
    operators created inside join it; ``DAG.validate()`` (run by the parser) checks for cycles, params,
    the timetable and setup/teardown rules.
    """

    airflow_version: ClassVar[int] = 3
    is_subdag: ClassVar[bool] = False
    parent_dag: ClassVar[None] = None

    def __init__(
        self,
        dag_id: str,
        description: str | None = None,
        schedule: Any = NOTSET,
        schedule_interval: Any = NOTSET,
        timetable: Timetable | None = None,
        start_date: datetime | str | None = None,
        end_date: datetime | str | None = None,
        full_filepath: str | None = None,
        template_searchpath: str | Iterable[str] | None = None,
        template_undefined: type | None = None,
        user_defined_macros: dict[str, Any] | None = None,
        user_defined_filters: dict[str, Callable[..., Any]] | None = None,
        default_args: dict[str, Any] | None = None,
        concurrency: int | None = None,
        max_active_tasks: int = DEFAULT_MAX_ACTIVE_TASKS,
        max_active_runs: int = DEFAULT_MAX_ACTIVE_RUNS,
        max_consecutive_failed_dag_runs: int = 0,
        dagrun_timeout: timedelta | None = None,
        sla_miss_callback: Callable[..., Any] | None = None,
        default_view: str = "grid",
        orientation: str = "LR",
        catchup: bool | None = None,
        on_success_callback: Callable[..., Any] | list[Callable[..., Any]] | None = None,
        on_failure_callback: Callable[..., Any] | list[Callable[..., Any]] | None = None,
        doc_md: str | None = None,
        params: Mapping[str, Any] | None = None,
        access_control: dict[str, Any] | None = None,
        is_paused_upon_creation: bool | None = None,
        jinja_environment_kwargs: dict[str, Any] | None = None,
        render_template_as_native_obj: bool = False,
        tags: Collection[str] | None = None,
        owner_links: dict[str, str] | None = None,
        auto_register: bool = True,
        fail_stop: bool = False,
        dag_display_name: str | None = None,
        *,
        fail_fast: bool = False,
        disable_bundle_versioning: bool = False,
        deadline: Any = None,
    ) -> None:
        from tradewind.sdk.timetables import coerce_utc, parse_datetime

        validate_key(dag_id)
        self.dag_id = dag_id
        self.description = description
        self.fileloc = _caller_fileloc()
        self.relative_fileloc: str | None = None
        self.full_filepath = full_filepath
        # A shallow copy (Airflow 3): values such as clients or locks need not be deep-copyable.
        self.default_args: dict[str, Any] = dict(default_args or {})
        merged_params = dict(params or {})
        if "params" in self.default_args:
            merged_params.update(self.default_args.pop("params") or {})
        self.params = ParamsDict(merged_params)

        if start_date is None:
            start_date = self.default_args.get("start_date")
        if isinstance(start_date, str):
            start_date = parse_datetime(start_date)
        if isinstance(end_date, str):
            end_date = parse_datetime(end_date)
        for key in ("start_date", "end_date"):
            value = self.default_args.get(key)
            if isinstance(value, str):
                value = parse_datetime(value)
            if value is not None:
                self.default_args[key] = coerce_utc(value)
        self.timezone = _timezone_of(start_date)
        self.start_date = coerce_utc(start_date)
        self.end_date = coerce_utc(end_date)

        self.schedule = schedule
        self.timetable = self._make_timetable(schedule, schedule_interval, timetable)
        self.catchup = bool(catchup) if catchup is not None else self.airflow_version == 2
        catchup_needs_start = self.airflow_version >= 3 and self.catchup and self.timetable.can_be_scheduled
        if catchup_needs_start and not self.start_date:
            raise AirflowValueError("start_date is required when catchup=True")

        self.template_searchpath = (
            [template_searchpath] if isinstance(template_searchpath, str) else template_searchpath
        )
        if template_undefined is None:
            import jinja2

            template_undefined = jinja2.StrictUndefined
        self.template_undefined = template_undefined
        self.user_defined_macros = user_defined_macros
        self.user_defined_filters = user_defined_filters
        self.max_active_tasks = concurrency if concurrency is not None else max_active_tasks
        self.max_active_runs = max_active_runs
        limit = self.timetable.active_runs_limit
        if limit is not None and self.max_active_runs > limit:
            raise AirflowValueError(
                f"Invalid max_active_runs: {type(self.timetable).__name__} requires max_active_runs <= {limit}"
            )
        self.max_consecutive_failed_dag_runs = max_consecutive_failed_dag_runs
        if dagrun_timeout is not None and not isinstance(dagrun_timeout, timedelta):
            raise AirflowValueError(
                f"Dag's dagrun_timeout must be a timedelta, not {type(dagrun_timeout).__name__}"
            )
        self.dagrun_timeout = dagrun_timeout
        self.sla_miss_callback = sla_miss_callback
        self.default_view = default_view
        self.orientation = orientation
        self.on_success_callback = on_success_callback
        self.on_failure_callback = on_failure_callback
        self.doc_md = _read_doc_md(doc_md)
        self.access_control = access_control
        self.is_paused_upon_creation = is_paused_upon_creation
        self.jinja_environment_kwargs = jinja_environment_kwargs
        self.render_template_as_native_obj = render_template_as_native_obj
        tag_list = list(tags or [])
        if any(len(tag) > TAG_MAX_LEN for tag in tag_list):
            raise AirflowValueError(f"tag cannot be longer than {TAG_MAX_LEN} characters")
        self.tags = tag_list
        _validate_owner_links(owner_links)
        self.owner_links = dict(owner_links or {})
        self.auto_register = auto_register
        self.fail_stop = bool(fail_stop or fail_fast)
        self.disable_bundle_versioning = disable_bundle_versioning
        self.deadline = deadline
        self._dag_display_name = dag_display_name
        self.task_dict: dict[str, AbstractOperator] = {}
        self.edge_info: dict[str, dict[str, dict[str, Any]]] = {}
        self.partial = False
        self._task_group = TaskGroup.create_root(self)
        self._check_schedule_params()

    # -- schedule

    def _make_timetable(
        self, schedule: Any, schedule_interval: Any, timetable: Timetable | None
    ) -> Timetable:
        from tradewind.sdk import timetables

        given = [
            not isinstance(schedule, ArgNotSet),
            not isinstance(schedule_interval, ArgNotSet),
            timetable is not None,
        ]
        if sum(given) > 1:
            raise AirflowValueError(
                "At most one allowed for args 'schedule_interval', 'schedule', and 'timetable'."
            )
        if timetable is not None:
            return timetables.create_timetable(timetable, self.timezone, data_intervals=True)
        if not isinstance(schedule_interval, ArgNotSet):
            self.schedule = schedule_interval
            return timetables.create_timetable(schedule_interval, self.timezone, data_intervals=True)
        if isinstance(schedule, ArgNotSet):
            schedule = timedelta(days=1) if self.airflow_version == 2 else None
            self.schedule = schedule
        return timetables.create_timetable(schedule, self.timezone, data_intervals=self.airflow_version == 2)

    @property
    def schedule_interval(self) -> Any:
        """Airflow 2's view of the schedule: the cron expression, timedelta, preset or None."""
        return self.timetable.schedule_interval

    @property
    def normalized_schedule_interval(self) -> Any:
        """Same as schedule_interval (presets resolved to their cron expressions)."""
        return self.timetable.schedule_interval

    def _check_schedule_params(self) -> None:
        if not self.timetable.can_be_scheduled:
            return
        problem = None
        if self.params.required_without_default():
            problem = "there are required params without default values"
        else:
            try:
                self.params.validate_defaults()
            except ParamValidationError as err:
                problem = str(err)
        if problem is not None:
            raise ParamValidationError(
                f"Dag {self.dag_id!r} is not allowed to define a Schedule, as there are required params "
                f"without default values, or the default values are not valid: {problem}"
            )

    # -- properties

    @property
    def dag_display_name(self) -> str:
        """The name shown in the UI (dag_id unless dag_display_name was given)."""
        return self._dag_display_name or self.dag_id

    @property
    def concurrency(self) -> int:
        """Airflow 2's old name for max_active_tasks."""
        return self.max_active_tasks

    @property
    def fail_fast(self) -> bool:
        """Airflow 3's name for fail_stop."""
        return self.fail_stop

    @property
    def task_group(self) -> TaskGroup:
        """The root task group."""
        return self._task_group

    @property
    def task_group_dict(self) -> dict[str | None, TaskGroup]:
        """group_id -> group, for every group (the root under None)."""
        return self._task_group.get_task_group_dict()

    @property
    def tasks(self) -> list[AbstractOperator]:
        """Every task, in the order they were added."""
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        """Every task id, in the order they were added."""
        return list(self.task_dict)

    @property
    def task_count(self) -> int:
        """The number of tasks."""
        return len(self.task_dict)

    @property
    def teardowns(self) -> list[AbstractOperator]:
        """The teardown tasks."""
        return [task for task in self.task_dict.values() if task.is_teardown]

    @property
    def roots(self) -> list[AbstractOperator]:
        """Tasks with no upstream task."""
        return [task for task in self.task_dict.values() if not task.upstream_task_ids]

    @property
    def leaves(self) -> list[AbstractOperator]:
        """Tasks with no downstream task."""
        return [task for task in self.task_dict.values() if not task.downstream_task_ids]

    @property
    def folder(self) -> str:
        """The folder of the file the DAG was defined in."""
        return os.path.dirname(self.fileloc)

    @property
    def owner(self) -> str:
        """The tasks' owners, comma-separated."""
        return ", ".join(sorted({str(getattr(t, "owner", "")) for t in self.task_dict.values()}))

    @property
    def safe_dag_id(self) -> str:
        """dag_id with dots escaped (Airflow 2)."""
        return self.dag_id.replace(".", "__dot__")

    @property
    def has_on_success_callback(self) -> bool:
        """Whether the DAG has a success callback."""
        return self.on_success_callback is not None

    @property
    def has_on_failure_callback(self) -> bool:
        """Whether the DAG has a failure callback."""
        return self.on_failure_callback is not None

    # -- tasks

    def add_task(self, task: AbstractOperator) -> None:
        """Add a task (BaseOperator or MappedOperator); DuplicateTaskIdFound if its id is taken."""
        FailStopDagInvalidTriggerRule.check(fail_stop=self.fail_stop, trigger_rule=task.trigger_rule)
        if task.start_date is None:
            task.start_date = self.start_date
        elif self.start_date is not None:
            task.start_date = max(task.start_date, self.start_date)
        if task.end_date is None:
            task.end_date = self.end_date
        elif self.end_date is not None:
            task.end_date = min(task.end_date, self.end_date)
        task_id = task.task_id
        if task.task_group is None:
            group = TaskGroupContext.get_current(self)
            if group is not None:
                group.add(task)
        existing = self.task_dict.get(task_id)
        if (existing is not None and existing is not task) or (
            existing is None and task_id in self._task_group.used_group_ids
        ):
            raise DuplicateTaskIdFound(f"Task id '{task_id}' has already been added to the DAG")
        self.task_dict[task_id] = task
        task._dag = self
        self._task_group.used_group_ids.add(task_id)

    def add_tasks(self, tasks: Iterable[AbstractOperator]) -> None:
        """Add several tasks."""
        for task in tasks:
            self.add_task(task)

    @property
    def task(self) -> Any:
        """`@dag.task`: the @task decorator with this DAG given, as Airflow has it."""
        from tradewind.sdk.decorators import task

        return functools.partial(task, dag=self)

    def get_task(self, task_id: str) -> AbstractOperator:
        """The task with that id; TaskNotFound otherwise."""
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise TaskNotFound(f"Task {task_id} not found") from None

    def has_task(self, task_id: str) -> bool:
        """Whether a task with that id exists."""
        return task_id in self.task_dict

    def set_dependency(self, upstream_task_id: str, downstream_task_id: str) -> None:
        """Draw an edge between two tasks already in the DAG."""
        self.get_task(upstream_task_id).set_downstream(self.get_task(downstream_task_id))

    def set_edge_info(self, upstream_task_id: str, downstream_task_id: str, info: dict[str, Any]) -> None:
        """Attach information (a label) to an edge."""
        self.edge_info.setdefault(upstream_task_id, {})[downstream_task_id] = info

    def get_edge_info(self, upstream_task_id: str, downstream_task_id: str) -> dict[str, Any]:
        """The information attached to an edge ({} when none)."""
        return self.edge_info.get(upstream_task_id, {}).get(downstream_task_id, {})

    def param(self, name: str, default: Any = NOTSET) -> DagParam:
        """A reference to DAG param `name`, resolved when a task runs."""
        from tradewind.sdk.xcom_arg import DagParam

        return DagParam(current_dag=self, name=name, default=default)

    # -- validation

    def topological_sort(self) -> tuple[AbstractOperator, ...]:
        """Tasks ordered so each comes after its upstream tasks; AirflowDagCycleException on a cycle."""
        ids = list(self.task_dict)
        upstream = {task_id: self.task_dict[task_id].upstream_task_ids for task_id in ids}
        try:
            order = topological_order(ids, upstream)
        except AirflowDagCycleException as err:
            cycle = str(err)
            raise AirflowDagCycleException(
                f"Cycle detected in DAG: {self.dag_id}. Faulty task: {cycle.split(' -> ')[0]} (cycle: {cycle})"
            ) from None
        return tuple(self.task_dict[task_id] for task_id in order)

    def check_cycle(self) -> None:
        """Raise AirflowDagCycleException (naming the cycle) if the dependencies contain one."""
        self.topological_sort()

    def validate(self) -> None:
        """Check the DAG as the parser does before accepting it: dependencies point at existing tasks, no
        cycle, params fit a scheduled DAG, the timetable is valid, setups are followed by all_success tasks."""
        for task in self.task_dict.values():
            for other in (*task.upstream_task_ids, *task.downstream_task_ids):
                if other not in self.task_dict:
                    raise AirflowException(
                        f"Task {task.task_id} depends on {other}, which is not in DAG {self.dag_id}"
                    )
        self.check_cycle()
        self._check_schedule_params()
        self.timetable.validate()
        self.validate_setup_teardown()

    def validate_setup_teardown(self) -> None:
        """Raise if a setup task is followed by a non-teardown task whose trigger rule is not all_success."""
        from tradewind.sdk.trigger_rule import TriggerRule

        for task in self.task_dict.values():
            if not task.is_setup:
                continue
            for down_id in task.downstream_task_ids:
                down = self.task_dict[down_id]
                if not down.is_teardown and down.trigger_rule != TriggerRule.ALL_SUCCESS:
                    raise AirflowValueError("Setup tasks must be followed with trigger rule ALL_SUCCESS.")

    # -- templates

    def get_template_env(self, *, force_sandboxed: bool = False) -> Any:
        """The Jinja environment this DAG's tasks render with."""
        from tradewind.sdk.templater import get_template_env

        if force_sandboxed and self.render_template_as_native_obj:
            clone = copy.copy(self)
            clone.render_template_as_native_obj = False
            return get_template_env(clone)
        return get_template_env(self)

    def resolve_template_files(self) -> None:
        """Load template files named by tasks' template fields."""
        for task in self.task_dict.values():
            resolve = getattr(task, "resolve_template_files", None)
            if resolve is not None:
                resolve()

    # -- context manager, identity

    def __enter__(self) -> DAG:
        DagContext.push(self)
        return self

    def __exit__(self, *exc: object) -> None:
        DagContext.pop()

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"

    def __lt__(self, other: DAG) -> bool:
        return self.dag_id < other.dag_id

    __hash__ = object.__hash__


class Airflow2DAG(DAG):
    """A DAG with Airflow 2's defaults (daily schedule, catchup, data-interval timetables)."""

    airflow_version: ClassVar[int] = 2


def _timezone_of(start_date: datetime | None) -> Any:
    from tradewind.sdk.timetables import UTC

    if start_date is not None and start_date.tzinfo is not None:
        return start_date.tzinfo
    return UTC


def _read_doc_md(doc_md: str | None) -> str | None:
    if doc_md is not None and doc_md.endswith(".md"):
        try:
            with open(doc_md) as fh:
                return fh.read()
        except OSError:
            return doc_md
    return doc_md


def _make_dag_decorator(dag_class: type[DAG]) -> Callable[..., Any]:
    def dag(dag_id_or_func: str | Callable[..., Any] | None = None, **dag_kwargs: Any) -> Any:
        """Decorator turning a function into a DAG factory: calling it builds the DAG (id: the function
        name unless given), runs the function inside it with DagParam references for its arguments (their
        defaults become DAG params), and returns the DAG. Works as `@dag` and `@dag(...)`."""
        dag_id = dag_kwargs.pop("dag_id", None)
        if isinstance(dag_id_or_func, str):
            dag_id = dag_id_or_func

        def wrapper(f: Callable[..., Any]) -> Callable[..., DAG]:
            signature = inspect.signature(f)

            @functools.wraps(f)
            def factory(*args: Any, **kwargs: Any) -> DAG:
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                with dag_class(dag_id or f.__name__, **dag_kwargs) as dag_obj:
                    if f.__doc__ and not dag_obj.doc_md:
                        dag_obj.doc_md = f.__doc__
                    f_kwargs = {name: dag_obj.param(name, value) for name, value in bound.arguments.items()}
                    dag_obj.fileloc = _caller_fileloc()
                    f(**f_kwargs)
                return dag_obj

            return factory

        if callable(dag_id_or_func):
            return wrapper(dag_id_or_func)
        return wrapper

    return dag


dag = _make_dag_decorator(DAG)
airflow2_dag = _make_dag_decorator(Airflow2DAG)
