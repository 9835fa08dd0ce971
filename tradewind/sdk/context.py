"""The template/task context: the dict a task's templates render with and its callables receive.

`build_context` makes it from the parent's `ti_info`; `get_current_context()` returns the one of the task
running now (Airflow's function of the same name).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
from collections.abc import Iterator, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import pendulum

from tradewind.sdk import macros
from tradewind.sdk.connections import ConnectionAccessor
from tradewind.sdk.variables import VariableAccessor


class Context(dict):
    """A task's context: a plain dict of Airflow's context keys (`ds`, `ti`, `params`, ...), so it works
    with `context["ds"]`, `**context` and Jinja alike."""


# Names a TaskFlow function may declare to receive from the context (they must default to None, if at all).
KNOWN_CONTEXT_KEYS: frozenset[str] = frozenset(
    {
        "conf",
        "conn",
        "dag",
        "dag_run",
        "data_interval_end",
        "data_interval_start",
        "ds",
        "ds_nodash",
        "exception",
        "execution_date",
        "expanded_ti_count",
        "inlet_events",
        "inlets",
        "logical_date",
        "macros",
        "map_index_template",
        "next_ds",
        "next_ds_nodash",
        "next_execution_date",
        "outlet_events",
        "outlets",
        "params",
        "prev_data_interval_end_success",
        "prev_data_interval_start_success",
        "prev_ds",
        "prev_ds_nodash",
        "prev_end_date_success",
        "prev_execution_date",
        "prev_execution_date_success",
        "prev_start_date_success",
        "reason",
        "run_after",
        "run_id",
        "start_date",
        "task",
        "task_instance",
        "task_instance_key_str",
        "task_reschedule_count",
        "templates_dict",
        "test_mode",
        "ti",
        "tomorrow_ds",
        "tomorrow_ds_nodash",
        "triggering_asset_events",
        "triggering_dataset_events",
        "try_number",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "var",
        "yesterday_ds",
        "yesterday_ds_nodash",
    }
)

_CURRENT: list[Context] = []


@contextlib.contextmanager
def set_current_context(context: Context) -> Iterator[Context]:
    """Make `context` what `get_current_context()` returns while the block runs."""
    _CURRENT.append(context)
    try:
        yield context
    finally:
        _CURRENT.pop()


def get_current_context() -> Context:
    """The context of the task running now; AirflowException outside a running task."""
    if not _CURRENT:
        from tradewind.sdk.exceptions import AirflowException

        raise AirflowException(
            "Current context was requested but no context was found! Are you running within an Airflow task?"
        )
    return _CURRENT[-1]


def parse_datetime(value: Any) -> pendulum.DateTime | None:
    """An ISO string (or datetime) from ti_info as a UTC pendulum DateTime; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, pendulum.DateTime):
        return value.in_timezone("UTC")
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return pendulum.instance(value).in_timezone("UTC")
    return _parse_iso(str(value))


@functools.lru_cache(maxsize=64)
def _parse_iso(text: str) -> pendulum.DateTime:
    """A task's ti_info repeats the same few dates (its run's logical date is also its data interval's start,
    say): each is parsed once. DateTimes are immutable, so sharing one is safe. The runner writes them with
    `isoformat()`, which Python reads back itself: pendulum's parser, for any other ISO 8601 form, costs a
    task child's start a third of a millisecond more per date."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        parsed = pendulum.parse(text)
        if not isinstance(parsed, pendulum.DateTime):
            raise ValueError(f"Not a date-time: {text!r}") from None
        return parsed.in_timezone("UTC")
    if moment.tzinfo is None:  # as pendulum reads a date-time without an offset
        moment = moment.replace(tzinfo=datetime.UTC)
    moment = moment.astimezone(datetime.UTC)
    return pendulum.DateTime(
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
        tzinfo=pendulum.UTC,
    )


class AirflowConfigAccessor:
    """The `conf` object (Airflow's configuration) with the few options DAG code reads; unknown options
    answer the fallback, or raise like Airflow's AirflowConfigException when there is none. As in Airflow,
    an `AIRFLOW__{SECTION}__{KEY}` environment variable overrides an option (the sandbox sets the DAGs
    folder's so)."""

    _DEFAULTS: dict[tuple[str, str], str] = {
        ("core", "dags_folder"): "",
        ("core", "default_timezone"): "utc",
        ("core", "executor"): "LocalExecutor",
        ("core", "load_examples"): "False",
        ("core", "dag_run_conf_overrides_params"): "True",
        ("core", "max_active_runs_per_dag"): "16",
        ("core", "max_active_tasks_per_dag"): "16",
        ("core", "default_task_retries"): "0",
        ("core", "default_pool_task_slot_count"): "128",
        ("core", "xcom_backend"): "airflow.models.xcom.BaseXCom",
        ("operators", "default_owner"): "airflow",
        ("operators", "default_queue"): "default",
        ("operators", "default_deferrable"): "False",
        ("scheduler", "catchup_by_default"): "True",
        ("webserver", "base_url"): "http://localhost:8080",
        ("api", "base_url"): "http://localhost:8080",
        ("logging", "base_log_folder"): "",
        ("email", "email_backend"): "airflow.utils.email.send_email_smtp",
        ("smtp", "smtp_mail_from"): "airflow@example.com",
    }

    def get(self, section: str, key: str, fallback: Any = None, **kwargs: Any) -> Any:
        """The option's value as a string, or `fallback` (raises when neither exists and no fallback)."""
        value = os.environ.get(f"AIRFLOW__{section.upper()}__{key.upper()}")
        if value is None:
            value = self._DEFAULTS.get((section.lower(), key.lower()))
        if value is not None:
            return value
        if fallback is not None or "fallback" in kwargs or "default" in kwargs:
            return fallback if fallback is not None else kwargs.get("fallback", kwargs.get("default"))
        from tradewind.sdk.exceptions import AirflowException

        raise AirflowException(f"section/key [{section}/{key}] not found in config")

    def getboolean(self, section: str, key: str, fallback: Any = None, **kwargs: Any) -> bool:
        """The option as a bool ("true"/"t"/"1" are true)."""
        value = self.get(section, key, fallback=fallback, **kwargs)
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("true", "t", "1", "yes", "on")

    def getint(self, section: str, key: str, fallback: Any = None, **kwargs: Any) -> int:
        """The option as an int."""
        return int(self.get(section, key, fallback=fallback, **kwargs))

    def getfloat(self, section: str, key: str, fallback: Any = None, **kwargs: Any) -> float:
        """The option as a float."""
        return float(self.get(section, key, fallback=fallback, **kwargs))

    def has_option(self, section: str, key: str) -> bool:
        """Whether the option is known."""
        return self.get(section, key, fallback=_UNKNOWN) is not _UNKNOWN


_UNKNOWN = object()
conf = AirflowConfigAccessor()


class RuntimeDagRun:
    """The `dag_run` object: the DAG run a task belongs to, as task code sees it."""

    def __init__(self, ti_info: Mapping[str, Any]) -> None:
        self.dag_id: str = ti_info["dag_id"]
        self.run_id: str = ti_info["run_id"]
        self.logical_date = parse_datetime(ti_info.get("logical_date"))
        self.execution_date = self.logical_date
        self.data_interval_start = parse_datetime(ti_info.get("data_interval_start"))
        self.data_interval_end = parse_datetime(ti_info.get("data_interval_end"))
        self.run_after = parse_datetime(ti_info.get("run_after")) or self.logical_date
        self.start_date = parse_datetime(ti_info.get("start_date"))
        # A DAG callback's ti_info carries the finished run's state and end date; a task's run is running.
        self.end_date = parse_datetime(ti_info.get("end_date"))
        self.run_type: str = ti_info.get("run_type") or "manual"
        self.conf: dict[str, Any] = dict(ti_info.get("conf") or {})
        external = ti_info.get("external_trigger")
        self.external_trigger: bool = bool(external) if external is not None else self.run_type == "manual"
        self.state: str = ti_info.get("run_state") or "running"
        self.triggering_asset_events = TriggeringAssetEvents(ti_info.get("triggering_asset_events"))

    def get_state(self) -> str:
        """The run's state: "running" while a task of it runs, the final one in a DAG callback."""
        return self.state

    def __repr__(self) -> str:
        return f"<DagRun {self.dag_id} @ {self.logical_date}: {self.run_id}, state:{self.state}>"


class _AssetEventsLookup:
    """Airflow 3.1's `for_asset` / `for_asset_alias` of outlet_events, inlet_events and
    triggering_asset_events: the item of an asset named by name and/or URI, or of an alias by name."""

    def for_asset(self, *, name: str | None = None, uri: str | None = None) -> Any:
        """`self[Asset(name=name, uri=uri)]` given both, else `self[Asset.ref(name=name)]` or
        `self[Asset.ref(uri=uri)]`; ValueError given neither."""
        from tradewind.sdk.assets import Asset, AssetRef

        if name and uri:
            return self[Asset(name=name, uri=uri)]
        if name:
            return self[AssetRef(name=name)]
        if uri:
            return self[AssetRef(uri=uri)]
        raise ValueError("name and uri cannot both be None")

    def for_asset_alias(self, *, name: str) -> Any:
        """`self[AssetAlias(name)]`."""
        from tradewind.sdk.assets import AssetAlias

        return self[AssetAlias(name)]


def _asset_key(key: Any) -> tuple[str, str]:
    """An outlet event accessor's key: ("asset", uri) of an asset, a URI or a ref by URI, ("alias", name) of
    an alias, ("name", name) of a ref by name."""
    from tradewind.sdk.assets import AssetRef

    if isinstance(key, str):
        return ("asset", key)
    if isinstance(key, AssetRef) and key.uri is None:
        return ("name", str(key.name))
    uri = getattr(key, "uri", None)
    if uri is not None:
        return ("asset", str(uri))
    name = getattr(key, "name", None)
    if name is not None:
        return ("alias", str(name))
    raise TypeError(f"Expected an Asset, AssetAlias or URI, got {type(key).__name__}")


class OutletEventAccessor:
    """`outlet_events[asset]`: set `.extra` for the asset's event, or for an alias `.add(asset, extra)`."""

    def __init__(self, key: Any) -> None:
        self.key = key
        self.extra: dict[str, Any] = {}
        self.asset_alias_events: list[dict[str, Any]] = []

    def add(self, asset: Any, extra: dict[str, Any] | None = None) -> None:
        """Record an event for `asset` through this alias."""
        kind, alias_name = _asset_key(self.key)
        if kind != "alias":
            raise TypeError("add() is only available on an AssetAlias's outlet events")
        uri = str(getattr(asset, "uri", asset))
        extra = plain_extra(extra or {}, what=f"The extra of the event of asset {uri!r}")
        name = str(getattr(asset, "name", uri))
        self.asset_alias_events.append({"uri": uri, "name": name, "extra": extra, "alias": alias_name})


class OutletEventAccessors(_AssetEventsLookup, Mapping):
    """The `outlet_events` context value: one accessor per asset or alias, created on first use. An
    Asset.ref to one of the task's outlet assets (`outlets`) is that asset's accessor, as Airflow resolves
    refs to their assets; a string naming one of its alias outlets is that alias's (Airflow 2.10)."""

    def __init__(self, outlets: list[Any] | None = None) -> None:
        self._accessors: dict[tuple[str, str], OutletEventAccessor] = {}
        self._outlets = list(outlets or [])

    def __getitem__(self, key: Any) -> OutletEventAccessor:
        from tradewind.sdk.assets import Asset, AssetAlias, AssetRef

        if isinstance(key, str) and not any(getattr(o, "uri", None) == key for o in self._outlets):
            # Airflow 2.10: a string naming one of the task's AssetAlias outlets is that alias.
            key = next((o for o in self._outlets if isinstance(o, AssetAlias) and o.name == key), key)
        if isinstance(key, AssetRef):
            wanted = _asset_identity(key)
            assets = (outlet for outlet in self._outlets if isinstance(outlet, Asset))
            key = next((asset for asset in assets if wanted & _asset_identity(asset)), key)
        asset_key = _asset_key(key)
        if asset_key not in self._accessors:
            self._accessors[asset_key] = OutletEventAccessor(key)
        return self._accessors[asset_key]

    def __iter__(self) -> Iterator[Any]:
        return (accessor.key for accessor in self._accessors.values())

    def __len__(self) -> int:
        return len(self._accessors)

    def events_for(self, outlets: list[Any]) -> list[dict[str, Any]]:
        """The asset events to record when the task succeeds: one per asset outlet (with its extra), one per
        Asset.ref outlet (`"ref": True`: the platform records it for the stored asset it names, if any), and
        every event added through an alias outlet."""
        from tradewind.sdk.assets import AssetRef

        events: list[dict[str, Any]] = []
        for outlet in outlets or []:
            try:
                kind, name = _asset_key(outlet)
            except TypeError:
                continue
            accessor = self._accessors.get((kind, name))
            if kind in ("asset", "name"):
                extra = accessor.extra if accessor else {}
                extra = plain_extra(extra, what=f"The extra of asset {name!r}")
                if isinstance(outlet, AssetRef):
                    events.append({"ref": True, "uri": outlet.uri, "name": outlet.name, "extra": extra})
                else:
                    events.append({"uri": name, "name": str(getattr(outlet, "name", name)), "extra": extra})
            elif kind == "alias" and accessor:
                events.extend(accessor.asset_alias_events)
        return events


def plain_extra(value: Any, *, what: str) -> Any:
    """An asset event's extra as the JSON it is stored as: dates and times as ISO 8601 strings and tuples as
    lists, as Airflow stores them; TypeError naming `what` for anything else JSON cannot hold."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain_extra(item, what=what) for item in value]
    if isinstance(value, Mapping):
        plain = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{what} has a key of type {type(key).__name__}; its keys must be strings")
            plain[key] = plain_extra(item, what=what)
        return plain
    raise TypeError(f"{what} holds a value of type {type(value).__qualname__}, which JSON cannot store")


class AssetKey(str):
    """A key of `triggering_asset_events`: the asset's URI (Airflow 2's keys were URI strings) that also has
    Airflow 3's AssetUniqueKey attributes `.name` and `.uri`."""

    name: str
    uri: str

    def __new__(cls, uri: str, name: str) -> AssetKey:
        key = super().__new__(cls, uri)
        key.uri, key.name = uri, name
        return key


class TriggeringAssetEvents(_AssetEventsLookup, Mapping):
    """`triggering_asset_events`: asset key (an AssetKey: the URI, with `.name` and `.uri`) → the events that
    triggered this run, each with attribute access (`.extra`, `.source_dag_id`, `.timestamp`, ...). An Asset,
    an Asset.ref (by URI or by name) and an AssetAlias (the events added through it) find their events too, in
    the order given; anything else is a KeyError. Empty unless asset-triggered."""

    def __init__(self, raw: Any) -> None:
        self._events: dict[AssetKey, list[SimpleNamespace]] = {}
        self._identities: list[tuple[set[tuple[str, str]], SimpleNamespace]] = []
        if isinstance(raw, Mapping):
            items = [(str(uri), events) for uri, events in raw.items()]
        else:
            items = [(str(event.get("uri")), [event]) for event in raw or []]
        for uri, events in items:
            for data in events:
                event = _asset_event({"uri": uri, **data})
                self._events.setdefault(AssetKey(uri, str(event.asset.name)), []).append(event)
                aliases = {("alias", str(alias)) for alias in event.source_aliases}
                self._identities.append(({("uri", uri), ("name", str(event.asset.name))} | aliases, event))

    def __getitem__(self, key: Any) -> list[SimpleNamespace]:
        if isinstance(key, str):
            return self._events[key]
        wanted = _asset_identity(key)
        found = [event for identity, event in self._identities if wanted & identity]
        if not found:
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator[AssetKey]:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)


def _asset_event(data: Mapping[str, Any]) -> SimpleNamespace:
    """An asset event as tasks see it: attributes `.extra`, `.timestamp` (a datetime), `.source_dag_id`,
    `.source_run_id`, `.source_task_id`, `.source_map_index`, `.source_aliases`, `.uri`, and `.asset`
    (Airflow 2: `.dataset`) with its `.uri`, `.name` and `.group`."""
    event = SimpleNamespace(**{"extra": {}, "source_aliases": [], **data})
    if "timestamp" in data:
        event.timestamp = parse_datetime(data["timestamp"])
    asset = {"uri": event.uri, "name": event.uri, "group": "", **(data.get("asset") or {})}
    event.asset = event.dataset = SimpleNamespace(**asset)
    return event


class InletEventsAccessor(Sequence):
    """`inlet_events[asset]`: the asset's events, oldest first (`[-1]` is the latest; slices work), asked of
    the platform on first use. Only the latest 1000 are there (Airflow gives every one)."""

    def __init__(self, query: dict[str, str]) -> None:
        self._query = query  # Client.get_asset_events' arguments (_inlet_query)
        self._events: list[SimpleNamespace] | None = None

    def _all(self) -> list[SimpleNamespace]:
        if self._events is None:
            from tradewind.sdk.execution import get_client

            self._events = [_asset_event(row) for row in get_client().get_asset_events(**self._query)]
        return self._events

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())


class InletEventAccessors(_AssetEventsLookup, Mapping):
    """`inlet_events`: for each of the task's inlets (an Asset, an Asset.ref or an AssetAlias) the accessor of
    its events. An inlet is found by itself, by its URI string, by its position, and an asset and a ref to it
    find each other (by URI or by name; Airflow resolves refs to their assets). Anything that is not an inlet
    is a KeyError, as in Airflow."""

    def __init__(self, inlets: list[Any]) -> None:
        # inlets may hold anything (lineage); only assets, refs and aliases count
        self._inlets = [inlet for inlet in inlets if not isinstance(inlet, str) and _asset_identity(inlet)]
        self._accessors: dict[int, InletEventsAccessor] = {}

    def __getitem__(self, key: Any) -> InletEventsAccessor:
        if isinstance(key, int) and not isinstance(key, bool):
            if not -len(self._inlets) <= key < len(self._inlets):
                raise KeyError(key)
            index = key % len(self._inlets)
        else:
            wanted = _asset_identity(key)
            index = next((i for i, inlet in enumerate(self._inlets) if wanted & _asset_identity(inlet)), None)
            if index is None:
                raise KeyError(key)
        if index not in self._accessors:
            self._accessors[index] = InletEventsAccessor(_inlet_query(self._inlets[index]))
        return self._accessors[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._inlets)

    def __len__(self) -> int:
        return len(self._inlets)


def _asset_identity(item: Any) -> set[tuple[str, str]]:
    """What identifies an asset, a ref or an alias (an inlet, an outlet, a key of the events accessors):
    ("uri", …), ("name", …) of an asset (a ref has one of the two), ("alias", …) of an alias, ("uri", …) of a
    URI string; empty for anything else. Two items are the same asset or alias when theirs intersect."""
    from tradewind.sdk.assets import Asset, AssetAlias, AssetRef

    if isinstance(item, str):
        return {("uri", item)}
    if isinstance(item, Asset):
        return {("uri", item.uri), ("name", item.name)}
    if isinstance(item, AssetRef):
        return {("uri", item.uri)} if item.uri is not None else {("name", item.name)}
    if isinstance(item, AssetAlias):
        return {("alias", item.name)}
    return set()


def _inlet_query(inlet: Any) -> dict[str, str]:
    """The Client.get_asset_events arguments that give this inlet's events."""
    from tradewind.sdk.assets import AssetAlias, AssetRef

    if isinstance(inlet, AssetAlias):
        return {"alias": inlet.name}
    if isinstance(inlet, AssetRef) and inlet.uri is None:
        return {"name": inlet.name}
    return {"uri": inlet.uri}


def _ds(moment: datetime.date) -> str:
    return moment.strftime("%Y-%m-%d")


def _ds_nodash(moment: datetime.date) -> str:
    return moment.strftime("%Y%m%d")


def _previous_and_next(dag_run: RuntimeDagRun) -> tuple[Any, Any]:
    """Airflow 2's deprecated prev/next execution dates: the run's own date for manual runs, else one data
    interval before / the end of this interval."""
    logical = dag_run.logical_date
    if logical is None or dag_run.external_trigger:
        return logical, logical
    start, end = dag_run.data_interval_start, dag_run.data_interval_end
    if start is None or end is None or end <= start:
        return None, None
    return logical - (end - start), end


def build_context(*, dag: Any, task: Any, ti: Any, ti_info: Mapping[str, Any], params: Any) -> Context:
    """Every context key Airflow 2 and 3 give a task, built from the parent's ti_info."""
    dag_run = RuntimeDagRun(ti_info)
    logical = dag_run.logical_date
    inlets = list(getattr(task, "inlets", None) or [])
    outlets = list(getattr(task, "outlets", None) or [])
    context = Context(
        conf=conf,
        conn=ConnectionAccessor(),
        dag=dag,
        dag_run=dag_run,
        data_interval_start=dag_run.data_interval_start,
        data_interval_end=dag_run.data_interval_end,
        logical_date=logical,
        execution_date=logical,
        run_after=dag_run.run_after,
        start_date=parse_datetime(ti_info.get("ti_start_date")),
        prev_data_interval_start_success=parse_datetime(ti_info.get("prev_data_interval_start_success")),
        prev_data_interval_end_success=parse_datetime(ti_info.get("prev_data_interval_end_success")),
        prev_start_date_success=parse_datetime(ti_info.get("prev_start_date_success")),
        prev_end_date_success=parse_datetime(ti_info.get("prev_end_date_success")),
        prev_execution_date_success=parse_datetime(ti_info.get("prev_logical_date_success")),
        inlets=inlets,
        inlet_events=InletEventAccessors(inlets),
        outlets=outlets,
        outlet_events=OutletEventAccessors(outlets),
        triggering_asset_events=dag_run.triggering_asset_events,
        triggering_dataset_events=dag_run.triggering_asset_events,
        macros=macros,
        map_index_template=getattr(task, "map_index_template", None),
        params=params,
        run_id=dag_run.run_id,
        task=task,
        task_instance=ti,
        ti=ti,
        test_mode=False,
        try_number=ti_info.get("try_number", 1),
        expanded_ti_count=ti_info.get("expanded_ti_count"),
        task_reschedule_count=ti_info.get("task_reschedule_count", 0),
        templates_dict=getattr(task, "templates_dict", None),
        var=VariableAccessor(),
    )
    if logical is not None:
        ds = _ds(logical)
        prev, following = _previous_and_next(dag_run)
        # Plain dates: the logical date is UTC, so its day ± 1 is the date of ± 24 hours (pendulum's
        # arithmetic costs a task child more than the rest of its context).
        day = datetime.date(logical.year, logical.month, logical.day)
        tomorrow, yesterday = day + datetime.timedelta(days=1), day - datetime.timedelta(days=1)
        context.update(
            ds=ds,
            ds_nodash=_ds_nodash(logical),
            ts=logical.isoformat(),
            ts_nodash=logical.strftime("%Y%m%dT%H%M%S"),
            ts_nodash_with_tz=logical.isoformat().replace("-", "").replace(":", ""),
            tomorrow_ds=_ds(tomorrow),
            tomorrow_ds_nodash=_ds_nodash(tomorrow),
            yesterday_ds=_ds(yesterday),
            yesterday_ds_nodash=_ds_nodash(yesterday),
            prev_execution_date=prev,
            prev_ds=_ds(prev) if prev else None,
            prev_ds_nodash=_ds_nodash(prev) if prev else None,
            next_execution_date=following,
            next_ds=_ds(following) if following else None,
            next_ds_nodash=_ds_nodash(following) if following else None,
            task_instance_key_str=f"{dag_run.dag_id}__{ti_info['task_id']}__{_ds_nodash(logical)}",
        )
    return context


def context_to_airflow_vars(context: Mapping[str, Any]) -> dict[str, str]:
    """The AIRFLOW_CTX_* environment variables Airflow exports for a running task (Airflow 2's
    EXECUTION_DATE and Airflow 3's LOGICAL_DATE both)."""
    env: dict[str, str] = {}
    dag = context.get("dag")
    task = context.get("task")
    ti = context.get("ti")
    if dag is not None and getattr(dag, "dag_id", None):
        env["AIRFLOW_CTX_DAG_ID"] = str(dag.dag_id)
    if task is not None and getattr(task, "task_id", None):
        env["AIRFLOW_CTX_TASK_ID"] = str(task.task_id)
        owner = getattr(task, "owner", None)
        if owner:
            env["AIRFLOW_CTX_DAG_OWNER"] = str(owner) if isinstance(owner, str) else ",".join(owner)
        email = getattr(task, "email", None)
        if email:
            env["AIRFLOW_CTX_DAG_EMAIL"] = email if isinstance(email, str) else ",".join(email)
    logical = context.get("logical_date")
    if logical is not None:
        env["AIRFLOW_CTX_EXECUTION_DATE"] = logical.isoformat()
        env["AIRFLOW_CTX_LOGICAL_DATE"] = logical.isoformat()
    if ti is not None:
        env["AIRFLOW_CTX_TRY_NUMBER"] = str(getattr(ti, "try_number", 1))
    if context.get("run_id"):
        env["AIRFLOW_CTX_DAG_RUN_ID"] = str(context["run_id"])
    return env
