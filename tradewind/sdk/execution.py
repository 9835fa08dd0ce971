"""Running one task instance inside the sandboxed child: the Client protocol to the parent, the task
instance object task code sees, and `run_task` / `run_dag_callback`.

Everything stateful (XCom, variables, connections, other runs) goes through the Client the sandbox sets
with `set_client`. A task's success or failure is an outcome dict, never an exception.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import decimal
import importlib
import inspect
import logging
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from tradewind.sdk.context import (
    Context,
    InletEventAccessors,
    build_context,
    context_to_airflow_vars,
    parse_datetime,
    set_current_context,
)

log = logging.getLogger(__name__)

XCOM_RETURN_KEY = "return_value"


class Client(Protocol):
    """Everything stateful a task asks its parent (answered over the sandbox's RPC channel)."""

    def xcom_push(self, *, key: str, value: Any) -> None:
        """Store an XCom of the running task instance (value already JSON-encoded by `encode_value`)."""
        ...

    def xcom_pull(
        self,
        *,
        dag_id: str,
        run_id: str,
        task_ids: list[str] | None,
        key: str,
        map_indexes: list[int] | None,
        include_prior_dates: bool = False,
    ) -> list[dict]:
        """Rows {"task_id", "map_index", "value"} of the XComs `key` of those tasks in that run (`task_ids`
        None: of the task that pushed `key` last); every map index when `map_indexes` is None. With
        `include_prior_dates`, each task's from the latest run of `dag_id` at or before the caller's run
        (by logical date) that has them, instead of the run `run_id`."""
        ...

    def get_variable(self, key: str) -> str | None:
        """The variable's stored string, None when it does not exist."""
        ...

    def set_variable(self, key: str, value: str) -> None:
        """Create or overwrite a variable."""
        ...

    def get_connection(self, conn_id: str) -> dict | None:
        """Airflow's connection fields (conn_type, host, login, password, schema, port, extra, ...), None
        when it does not exist."""
        ...

    def mask_secret(self, value: str) -> None:
        """From now on, mask `value` in this task's logs (and rendered fields)."""
        ...

    def trigger_dag_run(
        self, *, dag_id: str, run_id: str | None, conf: dict, logical_date: str | None, reset_dag_run: bool
    ) -> dict:
        """Create (or with reset_dag_run clear and re-run) a run; {"run_id", "state", "logical_date"?,
        "already_exists"?: bool}."""
        ...

    def get_dag_run_state(self, *, dag_id: str, run_id: str) -> str | None:
        """The run's state, None when there is no such run."""
        ...

    def count_task_states(
        self,
        *,
        dag_id: str,
        task_ids: list[str] | None,
        task_group_id: str | None,
        logical_dates: list[str],
        states: list[str],
    ) -> int:
        """How many task instances of those tasks (or of every task in the group) in the runs at those
        logical dates are in `states` ("none" included for instances with no state yet)."""
        ...

    def count_dag_runs(self, *, dag_id: str, logical_dates: list[str], states: list[str]) -> int:
        """How many runs of the DAG at those logical dates are in `states`."""
        ...

    def get_asset_events(
        self, *, uri: str | None = None, name: str | None = None, alias: str | None = None
    ) -> list[dict]:
        """The events of the asset at `uri` or named `name` (or added through the alias `alias`), oldest
        first: {"id", "uri", "asset": {"uri", "name", "group"}, "extra", "timestamp", "source_dag_id",
        "source_run_id", "source_task_id", "source_map_index", "source_aliases"}."""
        ...

    def get_asset(self, *, name: str) -> dict | None:
        """The asset named `name` ({"name", "uri", "group", "extra"}), or None when there is none."""
        ...

    def task_url(self) -> str:
        """The running task instance's page in the platform's UI."""
        ...


_client: Client | None = None


def set_client(client: Client | None) -> None:
    """Install (or with None remove) the Client this process's tasks talk to."""
    global _client
    _client = client


def current_client() -> Client | None:
    """The installed Client, or None."""
    return _client


def get_client() -> Client:
    """The installed Client; RuntimeError saying so when there is none (code running outside a task)."""
    if _client is None:
        raise RuntimeError(
            "No Tradewind client is set: variables, connections and XComs are only available while a task "
            "runs (tradewind.sdk.execution.set_client was not called)"
        )
    return _client


# --- values that cross the process boundary -------------------------------------------------------------

_TYPE_TAG = "__tw_type__"


def encode_value(value: Any, *, what: str = "value") -> Any:
    """`value` as JSON-able data: JSON types unchanged, tuples as lists, datetimes/dates/times/timedeltas/
    Decimals/sets and dataclass/attrs instances as tagged dicts that `decode_value` turns back. TypeError
    naming `what` and the type for anything else."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        encoded = {}
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise TypeError(
                    f"{what} has a dict key of type {type(key).__name__}, which JSON cannot store"
                )
            encoded[key] = encode_value(item, what=what)
        return encoded
    if isinstance(value, list | tuple):
        return [encode_value(item, what=what) for item in value]
    if isinstance(value, datetime.datetime):
        return {_TYPE_TAG: "datetime", "value": value.isoformat()}
    if isinstance(value, datetime.date):
        return {_TYPE_TAG: "date", "value": value.isoformat()}
    if isinstance(value, datetime.time):
        return {_TYPE_TAG: "time", "value": value.isoformat()}
    if isinstance(value, datetime.timedelta):
        return {_TYPE_TAG: "timedelta", "value": value.total_seconds()}
    if isinstance(value, decimal.Decimal):
        return {_TYPE_TAG: "decimal", "value": str(value)}
    if isinstance(value, set | frozenset):
        return {_TYPE_TAG: "set", "value": [encode_value(item, what=what) for item in value]}
    fields = _record_fields(value)
    if fields is not None:
        cls = type(value)
        if "<locals>" in cls.__qualname__:
            raise TypeError(
                f"{what} is a {cls.__qualname__}, a class defined inside a function, which another task "
                "cannot rebuild: define it at the top level of a module"
            )
        data = {name: encode_value(item, what=what) for name, item in fields.items()}
        return {
            _TYPE_TAG: "object",
            "value": {"module": cls.__module__, "class": cls.__qualname__, "fields": data},
        }
    raise TypeError(
        f"{what} is of type {type(value).__module__}.{type(value).__qualname__}, which is not "
        "JSON-serializable (XCom values must be JSON types, dates, times, timedeltas, dataclasses or attrs "
        "classes)"
    )


def _record_fields(value: Any) -> dict[str, Any] | None:
    """The fields of a dataclass or attrs instance (how Airflow serializes them: by their public fields), or
    None for anything else."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    attributes = getattr(type(value), "__attrs_attrs__", None)
    if attributes is not None:
        return {attribute.name: getattr(value, attribute.name) for attribute in attributes}
    return None


def _rebuild_object(raw: dict[str, Any]) -> Any:
    """A dataclass or attrs instance from its encoded form: the class is found by module and name (a DAG
    file's own module is already imported in the task's process) and called with the fields."""
    module_name, qualname = str(raw["module"]), str(raw["class"])
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    cls: Any = module
    for part in qualname.split("."):
        cls = getattr(cls, part)
    return cls(**{name: decode_value(item) for name, item in raw["fields"].items()})


def decode_value(value: Any) -> Any:
    """The inverse of `encode_value` (datetimes come back as pendulum DateTimes)."""
    if isinstance(value, list):
        return [decode_value(item) for item in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(_TYPE_TAG)
    if tag is not None and len(value) == 2 and "value" in value:
        raw = value["value"]
        if tag == "datetime":
            import pendulum

            parsed = datetime.datetime.fromisoformat(raw)
            return pendulum.instance(parsed) if parsed.tzinfo is not None else parsed
        if tag == "date":
            return datetime.date.fromisoformat(raw)
        if tag == "time":
            return datetime.time.fromisoformat(raw)
        if tag == "timedelta":
            return datetime.timedelta(seconds=raw)
        if tag == "decimal":
            return decimal.Decimal(raw)
        if tag == "set":
            return {decode_value(item) for item in raw}
        if tag == "object":
            return _rebuild_object(raw)
    return {key: decode_value(item) for key, item in value.items()}


def _display_value(value: Any) -> Any:
    """A rendered field for display: its JSON form when it has one, else its repr."""
    try:
        return encode_value(value)
    except TypeError:
        return repr(value)


# --- the task instance task code sees -------------------------------------------------------------------


class RuntimeTaskInstance:
    """The `ti` / `task_instance` of a running task: its identity, XCom push/pull, and what branching and
    skipping decided (read by run_task for the outcome)."""

    def __init__(self, *, task: Any, dag: Any, ti_info: Mapping[str, Any]) -> None:
        self.task = task
        self.dag_id: str = ti_info["dag_id"]
        self.task_id: str = ti_info["task_id"]
        self.run_id: str = ti_info["run_id"]
        map_index = ti_info.get("map_index")
        self.map_index: int = -1 if map_index is None else int(map_index)
        self.try_number: int = int(ti_info.get("try_number") or 1)
        max_tries = ti_info.get("max_tries")
        self.max_tries: int = int(getattr(task, "retries", 0) or 0) if max_tries is None else int(max_tries)
        self.logical_date = parse_datetime(ti_info.get("logical_date"))
        self.execution_date = self.logical_date
        self.start_date = parse_datetime(ti_info.get("ti_start_date") or datetime.datetime.now(datetime.UTC))
        self.first_try_start_date = parse_datetime(ti_info.get("first_try_start_date")) or self.start_date
        # A DAG callback's task instance is a finished one: ti_info then carries its state and end date.
        self.end_date = parse_datetime(ti_info.get("ti_end_date"))
        self.state: str = ti_info.get("ti_state") or "running"
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.operator = type(task).__name__
        self.pool = getattr(task, "pool", "default_pool")
        self.queue = getattr(task, "queue", "default")
        self.priority_weight = getattr(task, "priority_weight", 1)
        self.next_method: str | None = ti_info.get("next_method")
        self.next_kwargs: dict | None = ti_info.get("next_kwargs")
        self.rendered_map_index: str | None = None
        self.dag = dag
        self.dag_run: Any = None
        self.context: Context | None = None
        self.followed: list[str] | None = None
        self.skipped_task_ids: list[str] = []
        self.skip_respects_trigger_rules = False

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        """(dag_id, task_id, run_id, try_number, map_index)."""
        return (self.dag_id, self.task_id, self.run_id, self.try_number, self.map_index)

    def __repr__(self) -> str:
        suffix = f" map_index={self.map_index}" if self.map_index >= 0 else ""
        return f"<TaskInstance: {self.dag_id}.{self.task_id} {self.run_id}{suffix} [{self.state}]>"

    def get_dagrun(self) -> Any:
        """The `dag_run` object of this task's run."""
        return self.dag_run

    def get_template_context(self) -> Context:
        """The context this task runs with."""
        if self.context is None:
            raise RuntimeError("The task's context is not built yet")
        return self.context

    def xcom_push(self, key: str, value: Any, execution_date: Any = None, **_ignored: Any) -> None:
        """Store `value` under `key` for this task instance (JSON types, dates and timedeltas)."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"XCom key must be a non-empty string, got {key!r}")
        encoded = encode_value(value, what=f"The XCom {key!r} pushed by task {self.task_id!r}")
        get_client().xcom_push(key=key, value=encoded)

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        dag_id: str | None = None,
        key: str = XCOM_RETURN_KEY,
        include_prior_dates: bool = False,
        session: Any = None,
        *,
        map_indexes: int | Iterable[int] | None = None,
        default: Any = None,
        run_id: str | None = None,
    ) -> Any:
        """Values pushed under `key`, shaped as Airflow shapes them.

        `task_ids` None means this task (Airflow 3), or in an Airflow 2 DAG (`from airflow import DAG`) any
        task: the one that pushed `key` last, as Airflow 2 reads "no task filter".

        Without `map_indexes`: one task id gives its value (`default` when absent), or for a mapped task the
        list of its map indexes' values in order; a list of task ids gives one flat list, each task's values
        in turn (a mapped task's all of them, `default` for a task with none). With `map_indexes` (an int or
        a list), each (task, index) pair gives one value or `default`; a single task and a single index give
        that value.

        `include_prior_dates`: each task's values from the latest run (at or before this one, by logical
        date) that has them, as Airflow reads another DAG's earlier run.
        """
        single_task = task_ids is None or isinstance(task_ids, str)
        any_task = task_ids is None and getattr(self.dag, "airflow_version", 3) == 2
        if task_ids is None:
            ids = [self.task_id]
        elif isinstance(task_ids, str):
            ids = [task_ids]
        else:
            ids = list(task_ids)
        single_index = isinstance(map_indexes, int)
        indexes = None if map_indexes is None else [map_indexes] if single_index else list(map_indexes)
        rows = get_client().xcom_pull(
            dag_id=dag_id or self.dag_id,
            run_id=run_id or self.run_id,
            task_ids=None if any_task else ids,
            key=key,
            map_indexes=indexes,
            include_prior_dates=bool(include_prior_dates),
        )
        by_task: dict[str, dict[int, Any]] = {}
        for row in rows:
            by_task.setdefault(row["task_id"], {})[int(row.get("map_index", -1))] = row.get("value")
        if any_task and rows:
            ids = [rows[0]["task_id"]]
        if indexes is not None:
            pairs = [by_task.get(task_id, {}).get(index, default) for task_id in ids for index in indexes]
            return pairs[0] if single_task and single_index else pairs
        results = []
        for task_id in ids:
            found = by_task.get(task_id, {})
            values = [found[index] for index in sorted(found)]
            if single_task:
                is_mapped = any(index >= 0 for index in found) or (
                    not found and (dag_id in (None, self.dag_id)) and _is_mapped_task_id(self.dag, task_id)
                )
                return values if is_mapped else values[0] if values else default
            results.extend(values or [default])
        return results

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None until the task instance has ended (as in Airflow)."""
        if self.start_date is None or self.end_date is None:
            return None
        return (self.end_date - self.start_date).total_seconds()

    @property
    def log_url(self) -> str:
        """This try's page in the UI, with its log (asked of the platform when read)."""
        return f"{get_client().task_url()}?try={self.try_number}"

    mark_success_url = log_url

    def get_previous_ti(self, *args: Any, **kwargs: Any) -> None:
        """Tradewind does not give task code other task instances: always None."""
        return None

    def get_num_running_task_instances(self, *args: Any, **kwargs: Any) -> int:
        """Only this task instance is known to the child: 1."""
        return 1


def _is_mapped_task_id(dag: Any, task_id: str) -> bool:
    task = _find_task(dag, task_id)
    return task is not None and _is_mapped(task)


def _find_task(dag: Any, task_id: str) -> Any:
    task_dict = getattr(dag, "task_dict", None)
    if isinstance(task_dict, Mapping):
        return task_dict.get(task_id)
    try:
        return dag.get_task(task_id)
    except Exception:
        return None


def _is_mapped(task: Any) -> bool:
    try:
        from tradewind.sdk.mappedoperator import MappedOperator
    except ImportError:
        return bool(getattr(task, "is_mapped", False))
    return isinstance(task, MappedOperator)


# --- run_task -------------------------------------------------------------------------------------------


class _DecodingClient:
    """The installed Client, with pulled XCom values decoded (`decode_value`) for every reader: the task
    instance, XComArg resolution and mapped-task expansion alike."""

    def __init__(self, inner: Client) -> None:
        self._inner = inner

    def xcom_pull(self, **kwargs: Any) -> list[dict]:
        rows = self._inner.xcom_pull(**kwargs)
        return [{**row, "value": decode_value(row.get("value"))} for row in rows]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextlib.contextmanager
def _decoding_client() -> Iterator[None]:
    global _client
    inner = _client
    if inner is None or isinstance(inner, _DecodingClient):
        yield
        return
    _client = _DecodingClient(inner)  # type: ignore[assignment]
    try:
        yield
    finally:
        _client = inner


class _Timeout:
    """execution_timeout inside the child: SIGALRM raises AirflowTaskTimeout in the main thread (the
    parent also kills the child on timeout; this gives the task a Python traceback and callbacks)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._previous: Any = None

    def _expired(self, signum: int, frame: Any) -> None:
        from tradewind.sdk.exceptions import AirflowTaskTimeout

        raise AirflowTaskTimeout(
            f"Timeout, PID: {os.getpid()} (execution_timeout of {self.seconds}s exceeded)"
        )

    def __enter__(self) -> _Timeout:
        if self.seconds and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGALRM, self._expired)
            signal.setitimer(signal.ITIMER_REAL, max(self.seconds, 0.001))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
            self._previous = None


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return float(value)


def _callbacks(value: Any) -> list[Callable]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [callback for callback in value if callback is not None]
    return [value]


def _callable_name(callback: Any) -> str:
    return (
        getattr(callback, "__qualname__", None)
        or getattr(callback, "__name__", None)
        or type(callback).__name__
    )


def _format_error(error: BaseException) -> str:
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _new_outcome() -> dict[str, Any]:
    return {
        "state": "failed",
        "error": None,
        "traceback": None,
        "fail_fast": False,
        "reschedule_date": None,
        "trigger": None,
        "followed": None,
        "skip_downstream": None,
        "asset_events": [],
        "rendered_fields": {},
        "map_index_label": None,
        "callbacks_run": [],
    }


def determine_kwargs(function: Callable, args: Iterable[Any], mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments `function` gets from `mapping` (context plus op_kwargs), Airflow's rule:
    everything when it takes **kwargs, otherwise only the names it declares. ValueError when a positional
    argument's parameter name is also a key of `mapping`."""
    signature = inspect.signature(function)
    positional = list(args)
    for index, name in enumerate(signature.parameters):
        if index >= len(positional):
            break
        if name in mapping:
            raise ValueError(f"The key {name!r} in args is a part of kwargs and therefore reserved.")
    if any(param.kind is param.VAR_KEYWORD for param in signature.parameters.values()):
        return dict(mapping)
    return {name: mapping[name] for name in signature.parameters if name in mapping}


def resolve_params(dag: Any, task: Any, conf: Mapping[str, Any] | None) -> dict[str, Any]:
    """The `params` of a run as plain values: DAG params, then task params, then the run's conf on top
    (Airflow's dag_run_conf_overrides_params), all validated. ParamValidationError when one is invalid."""
    import copy

    from tradewind.sdk.params import ParamsDict

    merged = ParamsDict()
    for source in (getattr(dag, "params", None), getattr(task, "params", None)):
        if source:
            merged.update(copy.copy(source) if isinstance(source, ParamsDict) else ParamsDict(source))
    return merged.resolve(dict(conf) if conf else None)


class _TaskRun:
    """One attempt of one task instance: turns everything that happens into the outcome dict."""

    def __init__(self, dag: Any, task_id: str, ti_info: Mapping[str, Any]) -> None:
        self.dag = dag
        self.task_id = task_id
        self.ti_info = ti_info
        self.outcome = _new_outcome()
        self.task: Any = None
        self.ti: RuntimeTaskInstance | None = None
        self.context: Context | None = None
        self.jinja_env: Any = None

    def run(self) -> dict[str, Any]:
        try:
            self._prepare()
        except Exception as error:
            self._fail(error, fail_fast=False, callbacks=False)
            return self.outcome
        assert self.context is not None
        with set_current_context(self.context):
            try:
                self._execute()
            except BaseException as error:  # noqa: B036  (every task error, SystemExit included, is an outcome)
                if isinstance(error, KeyboardInterrupt):
                    raise
                self._handle_error(error)
            finally:
                self._render_map_index()
        return self.outcome

    def _prepare(self) -> None:
        task = _find_task(self.dag, self.task_id)
        if task is None:
            raise KeyError(f"Task {self.task_id!r} not found in DAG {getattr(self.dag, 'dag_id', '?')!r}")
        self.task = task
        self.ti = RuntimeTaskInstance(task=task, dag=self.dag, ti_info=self.ti_info)
        params = resolve_params(self.dag, task, self.ti_info.get("conf"))
        self.context = build_context(dag=self.dag, task=task, ti=self.ti, ti_info=self.ti_info, params=params)
        self.ti.dag_run = self.context["dag_run"]
        self.ti.context = self.context

    def _set_task(self, task: Any) -> None:
        assert self.ti is not None and self.context is not None
        self.task = task
        self.ti.task = task
        self.ti.operator = type(task).__name__
        self.context["task"] = task
        self.context["inlets"] = list(getattr(task, "inlets", None) or [])
        self.context["inlet_events"] = InletEventAccessors(self.context["inlets"])
        self.context["outlets"] = list(getattr(task, "outlets", None) or [])
        self.context["templates_dict"] = getattr(task, "templates_dict", None)

    def _execute(self) -> None:
        assert self.ti is not None and self.context is not None
        if _is_mapped(self.task):
            if self.context.get("expanded_ti_count") is None:
                self.context["expanded_ti_count"] = self.task.get_parse_time_mapped_ti_count()
            self._set_task(unmap_task(self.task, self.context, self.ti.map_index))
        elif hasattr(self.task, "prepare_for_execution"):
            # A copy to run: rendering and execute change attributes, never the DAG's own task.
            self._set_task(self.task.prepare_for_execution())
        task = self.task
        if hasattr(task, "resolve_template_files"):
            task.resolve_template_files()
        if hasattr(task, "render_template_fields"):
            if getattr(task, "has_templates", lambda: True)():
                self.jinja_env = task.get_template_env() if hasattr(task, "get_template_env") else None
                task.render_template_fields(self.context, self.jinja_env)
            self.context["templates_dict"] = getattr(task, "templates_dict", None)
        self.outcome["rendered_fields"] = {
            field: _display_value(getattr(task, field, None))
            for field in getattr(task, "template_fields", ())
        }
        os.environ.update(context_to_airflow_vars(self.context))
        self._run_callbacks("on_execute_callback")
        if self.ti.next_method:
            with _Timeout(_seconds(getattr(task, "execution_timeout", None))):
                result = resume_execution(task, self.ti.next_method, self.ti.next_kwargs, self.context)
        else:
            if hasattr(task, "pre_execute"):
                task.pre_execute(context=self.context)
            with _Timeout(_seconds(getattr(task, "execution_timeout", None))):
                result = task.execute(self.context)
            if hasattr(task, "post_execute"):
                task.post_execute(context=self.context, result=result)
        self._push_result(result)
        self._succeed()

    def _succeed(self) -> None:
        assert self.ti is not None and self.context is not None
        self.outcome["state"] = "success"
        self.outcome["followed"] = self.ti.followed
        if self.ti.skipped_task_ids:
            self.outcome["skip_downstream"] = {
                "task_ids": list(dict.fromkeys(self.ti.skipped_task_ids)),
                "respect_trigger_rules": self.ti.skip_respects_trigger_rules,
            }
        self.outcome["asset_events"] = self.context["outlet_events"].events_for(self.context["outlets"])
        self._run_callbacks("on_success_callback")

    def _push_result(self, result: Any) -> None:
        assert self.ti is not None
        task = self.task
        if result is None or not getattr(task, "do_xcom_push", True):
            return
        what = f"The value returned by task {self.ti.task_id!r}"
        encoded = encode_value(result, what=what)
        client = get_client()
        if getattr(task, "multiple_outputs", False):
            if not isinstance(result, dict):
                raise TypeError(
                    f"Returned output was type {type(result)} expected dictionary for multiple_outputs"
                )
            for key in result:
                if not isinstance(key, str):
                    raise TypeError(
                        "Returned dictionary keys must be strings when using multiple_outputs, found "
                        f"{key} ({type(key)}) instead"
                    )
                client.xcom_push(key=key, value=encoded[key])
        client.xcom_push(key=XCOM_RETURN_KEY, value=encoded)

    def _handle_error(self, error: BaseException) -> None:
        from tradewind.sdk import exceptions as exc

        assert self.ti is not None
        if isinstance(error, exc.TaskDeferred):
            self._defer(error)
        elif isinstance(error, exc.AirflowRescheduleException):
            self.outcome["state"] = "up_for_reschedule"
            moment = parse_datetime(error.reschedule_date)
            self.outcome["reschedule_date"] = moment.isoformat() if moment else None
        elif isinstance(error, exc.DownstreamTasksSkipped):
            self.ti.skipped_task_ids.extend(t if isinstance(t, str) else t[0] for t in error.tasks)
            self._succeed()
        elif isinstance(error, exc.AirflowSkipException):
            self.outcome["state"] = "skipped"
            self.outcome["error"] = str(error) or None
            log.info("Skipping task %s: %s", self.ti.task_id, error)
            self.context["exception"] = error  # type: ignore[index]
            self._run_callbacks("on_skipped_callback")
        elif isinstance(error, exc.AirflowFailException | exc.AirflowSensorTimeout):
            self._fail(error, fail_fast=True)
        else:
            if isinstance(error, exc.AirflowTaskTimeout | exc.AirflowTaskTerminated):
                self._on_kill()
            self._fail(error, fail_fast=False)

    def _on_kill(self) -> None:
        """A timeout or termination interrupted execute: let the operator clean up, as Airflow does."""
        on_kill = getattr(self.task, "on_kill", None)
        if on_kill is None:
            return
        try:
            on_kill()
        except Exception:
            log.exception("Error in on_kill of task %s", self.task_id)

    def _defer(self, deferred: Any) -> None:
        classpath, kwargs = deferred.trigger.serialize()
        timeout = _seconds(getattr(deferred, "timeout", None))
        self.outcome["state"] = "deferred"
        self.outcome["trigger"] = {
            "classpath": classpath,
            "kwargs": encode_value(kwargs, what=f"The kwargs of trigger {classpath}"),
            "method_name": deferred.method_name,
            "next_kwargs": encode_value(deferred.kwargs or {}, what="The next_kwargs of a deferral"),
            "timeout_s": timeout,
        }

    def _fail(self, error: BaseException, *, fail_fast: bool, callbacks: bool = True) -> None:
        self.outcome["state"] = "failed"
        self.outcome["fail_fast"] = fail_fast
        self.outcome["error"] = _format_error(error)
        self.outcome["traceback"] = "".join(traceback.format_exception(error))
        log.error("Task failed with exception", exc_info=error)
        if not callbacks or self.context is None or self.ti is None:
            return
        self.context["exception"] = error
        will_retry = not fail_fast and self.ti.try_number <= self.ti.max_tries
        self._run_callbacks("on_retry_callback" if will_retry else "on_failure_callback")

    def _run_callbacks(self, kind: str) -> None:
        if self.ti is not None:  # as in Airflow, a callback sees the state the try ends in, and its end
            self.ti.state = _STATE_SEEN_BY_CALLBACK[kind]
            if kind != "on_execute_callback":
                self.ti.end_date = self.ti.end_date or datetime.datetime.now(datetime.UTC)
        for callback in _callbacks(getattr(self.task, kind, None)):
            entry = {"kind": kind, "name": _callable_name(callback), "error": None}
            try:
                callback(self.context)
            except Exception as error:
                log.exception("Error when executing %s callback %s", kind, entry["name"])
                entry["error"] = _format_error(error)
            self.outcome["callbacks_run"].append(entry)

    def _render_map_index(self) -> None:
        template = getattr(self.task, "map_index_template", None)
        if not template or self.ti is None or self.ti.map_index < 0 or self.context is None:
            return
        try:
            from tradewind.sdk.templater import get_template_env

            env = self.jinja_env or get_template_env(self.dag)
            label = env.from_string(template).render(self.context)
            self.outcome["map_index_label"] = str(label)
            self.ti.rendered_map_index = str(label)
        except Exception:
            log.exception("Could not render map_index_template %r", template)


_STATE_SEEN_BY_CALLBACK = {
    "on_execute_callback": "running",
    "on_success_callback": "success",
    "on_failure_callback": "failed",
    "on_retry_callback": "up_for_retry",
    "on_skipped_callback": "skipped",
}


def resume_execution(
    task: Any, next_method: str, next_kwargs: Mapping[str, Any] | None, context: Context
) -> Any:
    """Continue a deferred task with the trigger's event: the task's own `resume_execution` when it has one,
    else `default_resume`."""
    kwargs = decode_value(dict(next_kwargs or {}))
    custom = getattr(task, "resume_execution", None)
    if callable(custom):
        return custom(next_method=next_method, next_kwargs=kwargs, context=context)
    return default_resume(task, next_method, kwargs, context)


def default_resume(task: Any, next_method: str, next_kwargs: Mapping[str, Any], context: Context) -> Any:
    """Call `task.<next_method>(context=context, **next_kwargs)`; `__fail__` (the trigger failed or timed
    out) raises TaskDeferralTimeout / TaskDeferralError as Airflow does."""
    if next_method == "__fail__":
        raise_trigger_failure(next_kwargs)
    return getattr(task, next_method)(context=context, **next_kwargs)


TRIGGER_TIMEOUT_REASON = "Trigger/execution timeout"


def raise_trigger_failure(next_kwargs: Mapping[str, Any]) -> None:
    """Raise what Airflow raises when a deferred task's trigger failed (`__fail__`)."""
    from tradewind.sdk import exceptions as exc

    trace = next_kwargs.get("traceback")
    if trace:
        log.error("Trigger failed:\n%s", "\n".join(trace) if isinstance(trace, list) else trace)
    error = next_kwargs.get("error", "Unknown")
    if error == TRIGGER_TIMEOUT_REASON:
        raise exc.TaskDeferralTimeout(error)
    raise exc.TaskDeferralError(error)


def unmap_task(mapped: Any, context: Context, map_index: int) -> Any:
    """The concrete operator for `map_index` of a mapped task: its expand input is resolved (upstream XComs
    pulled through the context's ti) and applied to the partial arguments."""
    if map_index < 0:
        raise RuntimeError(f"Mapped task {mapped.task_id!r} needs a map_index >= 0, got {map_index}")
    return mapped.unmap_with_context(context)


def run_task(dag: Any, task_id: str, ti_info: dict) -> dict:
    """Run one try of `task_id` and return its outcome dict (see SDK_SPEC.md); never raises for task
    errors. Builds the context, unmaps a mapped task, renders templates, runs callbacks and execute (or
    resumes a deferral), pushes the result through the Client and records asset events."""
    with _decoding_client():
        return _TaskRun(dag, task_id, ti_info).run()


def run_dag_callback(dag: Any, kind: str, info: dict) -> dict:
    """Run the DAG's `on_success_callback` or `on_failure_callback` (`kind` "success"|"failure") with a
    context built from `info` (a ti_info of the run; with a task_id the context is that task's, as Airflow
    gives the run's last task instance; `reason` is added). Returns {"callbacks_run": [...], "error"}."""
    if kind not in ("success", "failure"):
        raise ValueError(f"Unknown DAG callback kind {kind!r}")
    result: dict[str, Any] = {"callbacks_run": [], "error": None}
    callbacks = _callbacks(getattr(dag, f"on_{kind}_callback", None))
    if not callbacks:
        return result
    try:
        task = _find_task(dag, info["task_id"]) if info.get("task_id") else None
        ti_info = {"task_id": info.get("task_id") or "", **info}
        ti = RuntimeTaskInstance(task=task, dag=dag, ti_info=ti_info) if task is not None else None
        try:
            params = resolve_params(dag, task, info.get("conf"))
        except Exception:
            params = dict(getattr(dag, "params", None) or {})
        context = build_context(dag=dag, task=task, ti=ti, ti_info=ti_info, params=params)
        context["reason"] = info.get("reason") or ("success" if kind == "success" else "task_failure")
        if ti is not None:
            ti.dag_run = context["dag_run"]
            ti.context = context
    except Exception as error:
        result["error"] = _format_error(error)
        return result
    with _decoding_client(), set_current_context(context):
        for callback in callbacks:
            entry = {"kind": f"on_{kind}_callback", "name": _callable_name(callback), "error": None}
            try:
                callback(context)
            except Exception as error:
                log.exception("Error when executing DAG %s callback %s", kind, entry["name"])
                entry["error"] = _format_error(error)
                result["error"] = entry["error"]
            result["callbacks_run"].append(entry)
    return result


class XCom:
    """Airflow's `XCom` model, for task code reading or writing XComs of the running DAG run."""

    @classmethod
    def get_one(
        cls,
        *,
        key: str | None = None,
        task_id: str | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        map_index: int | None = None,
        **_ignored: Any,
    ) -> Any:
        """One XCom value (None when absent), by default of the running task's DAG run."""
        from tradewind.sdk.context import get_current_context

        ti = get_current_context()["ti"]
        return ti.xcom_pull(
            task_ids=task_id or ti.task_id,
            dag_id=dag_id,
            key=key or XCOM_RETURN_KEY,
            run_id=run_id,
            map_indexes=map_index,
        )

    @classmethod
    def set(cls, key: str, value: Any, *, task_id: str | None = None, **_ignored: Any) -> None:
        """Push an XCom for the running task instance (the only one task code may write)."""
        from tradewind.sdk.context import get_current_context

        ti = get_current_context()["ti"]
        if task_id not in (None, ti.task_id):
            raise PermissionError("A task can only push XComs for itself")
        ti.xcom_push(key=key, value=value)
