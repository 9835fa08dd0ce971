"""The parent's answers to a sandboxed child's requests (tradewind.sdk.execution.Client, over sandbox RPC).

Every answer is scoped to one tenant: a child can only reach its own tenant's runs, XComs, DAGs and secrets,
whatever ids it sends. Secrets handed to a child are remembered by the try's Masker (so its log shows `***`)
and their reads audited. An exception raised here travels back to the child and is raised there with the
same type name (builtins and tradewind.sdk.exceptions) and message; messages name ids and sizes, not values.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from scheduler import xcoms
from scheduler.models import Asset, AssetEvent, Dag, DagRun, TaskInstance, XCom
from scheduler.services import serialized_of
from scheduler.states import RunType, TIState
from tenants.models import Tenant
from tradewind.accounts.actors import Actor
from tradewind.errors import DomainError
from tradewind.sdk import exceptions as sdk_exceptions

if TYPE_CHECKING:
    from tradewind.secrets.masking import Masker

log = logging.getLogger(__name__)

# How many of an asset's events a task's `inlet_events` sees at most: the latest ones (Airflow gives all).
INLET_EVENTS_MAX = 1000


class SecretReader:
    """Reads a tenant's variables and connections for tenant code and remembers the secret ones in the
    Masker. The secrets service audits every read it answers (secret.read) under `actor`."""

    def __init__(self, *, tenant_id: int, masker: Masker, actor: Actor) -> None:
        self.tenant_id = tenant_id
        self.masker = masker
        self.actor = actor
        self._tenant: Tenant | None = None

    @property
    def tenant(self) -> Tenant:
        """The tenant whose secrets are read."""
        if self._tenant is None:
            self._tenant = Tenant.objects.get(pk=self.tenant_id)
        return self._tenant

    def get_variable(self, *, key: str) -> str | None:
        """The variable's value, or None; a sensitive one is masked from now on."""
        from tradewind.secrets import services as secrets

        key = _text(key, "key")
        with transaction.atomic():
            value = secrets.get_variable(tenant=self.tenant, key=key, actor=self.actor)
        if value is not None:
            self.masker.add_variable(key, value)
        return value

    def set_variable(self, *, key: str, value: str) -> None:
        """Store a variable of the tenant (audited by the secrets service)."""
        from tradewind.secrets import services as secrets

        key = _text(key, "key")
        if not isinstance(value, str):
            value = json.dumps(value)
        self.masker.add_variable(key, value)
        with transaction.atomic():
            secrets.set_variable(tenant=self.tenant, actor=self.actor, key=key, value=value, description=None)

    def get_connection(self, *, conn_id: str) -> dict | None:
        """The connection's fields (Airflow's), or None; its password and extras are masked from now on."""
        from tradewind.secrets import services as secrets

        conn_id = _text(conn_id, "conn_id")
        with transaction.atomic():
            conn = secrets.get_connection(tenant=self.tenant, conn_id=conn_id, actor=self.actor)
        if conn is not None:
            self.masker.add_connection(conn)
        return conn


class ParseRpcHandler:
    """The handler for parsing a tenant's DAG files: only top-level Variable.get / Connection lookups.

    `secrets_tenant_id` lets `dags test --tenant SLUG` answer them from a real tenant while the files are
    parsed in the test's own (ephemeral) tenant, as TaskRpcHandler does for its tasks.
    """

    def __init__(
        self, *, tenant_id: int, masker: Masker | None = None, secrets_tenant_id: int | None = None
    ) -> None:
        from tradewind.secrets.masking import Masker

        self.masker = masker if masker is not None else Masker()
        self.secrets = SecretReader(
            tenant_id=secrets_tenant_id or tenant_id, masker=self.masker, actor=Actor.system("dag parsing")
        )

    def __call__(self, op: str, kwargs: dict[str, Any]) -> Any:
        """Answer one request of a parsing child."""
        if op == "get_variable":
            return self.secrets.get_variable(**kwargs)
        if op == "get_connection":
            return self.secrets.get_connection(**kwargs)
        if op == "mask_secret":
            return self.masker.add(_text(kwargs.get("value"), "value"))
        raise RuntimeError(f"{op} is not available while a DAG file is being parsed")


class TaskRpcHandler:
    """The handler for one try of one task instance (and for its trigger, run inline).

    `secrets_tenant_id` lets `dags test --tenant SLUG` answer variables and connections from a real tenant
    while everything else stays in the task's own (ephemeral) tenant.

    With `defer_xcoms` pushes are checked at once but kept (`pending_xcoms`) for the try's finish to write
    with its outcome (scheduler.xcoms); any other request but a mask writes them first, so whatever the
    child asks next sees them.
    """

    def __init__(
        self,
        *,
        ti: TaskInstance,
        masker: Masker,
        secrets_tenant_id: int | None = None,
        defer_xcoms: bool = False,
    ) -> None:
        self.ti = ti
        self.tenant_id = ti.tenant_id
        self.masker = masker
        self.defer_xcoms = defer_xcoms
        self.pending_xcoms: xcoms.Pending = {}
        self.actor = Actor.system(
            f"task {self._task_label()} of run {ti.dag_run.run_id}, try {ti.try_number}"
        )
        self.secrets = SecretReader(
            tenant_id=secrets_tenant_id or ti.tenant_id, masker=masker, actor=self.actor
        )
        self._ops: dict[str, Callable[..., Any]] = {
            "xcom_push": self.xcom_push,
            "xcom_pull": self.xcom_pull,
            "get_variable": self.secrets.get_variable,
            "set_variable": self.secrets.set_variable,
            "get_connection": self.secrets.get_connection,
            "mask_secret": self.mask_secret,
            "trigger_dag_run": self.trigger_dag_run,
            "get_dag_run_state": self.get_dag_run_state,
            "count_task_states": self.count_task_states,
            "count_dag_runs": self.count_dag_runs,
            "get_asset_events": self.get_asset_events,
            "get_asset": self.get_asset,
            "task_url": self.task_url,
        }

    def __call__(self, op: str, kwargs: dict[str, Any]) -> Any:
        """Answer one request; unknown operations and bad arguments are errors for the child."""
        method = self._ops.get(op)
        if method is None:
            raise ValueError(f"unknown request {op!r}")
        if self.pending_xcoms and op not in ("xcom_push", "mask_secret"):
            pending, self.pending_xcoms = self.pending_xcoms, {}
            self._store(pending)
        return method(**kwargs)

    # --- XCom ---------------------------------------------------------------------------------------

    def xcom_push(self, *, key: str, value: Any) -> None:
        """Store an XCom of this task instance (or keep it for the finish, deferring): JSON only, at most
        settings.TRADEWIND_XCOM_MAX_BYTES."""
        key = _text(key, "key")
        if len(key) > XCom._meta.get_field("key").max_length:
            raise ValueError(f"XCom key {key[:50]!r}... is longer than 512 characters")
        label = self._task_label()
        try:
            size = len(json.dumps(value, allow_nan=False, separators=(",", ":")).encode())
        except ValueError:
            raise ValueError(
                f"XCom {key!r} of task {label} is not valid JSON (NaN and Infinity cannot be stored)"
            ) from None
        limit = settings.TRADEWIND_XCOM_MAX_BYTES
        if size > limit:
            raise ValueError(
                f"XCom {key!r} of task {label} is {size} bytes, above the limit of {limit} bytes "
                "(TRADEWIND_XCOM_MAX_BYTES); store large data elsewhere and push a reference to it"
            )
        if self.defer_xcoms:
            self.pending_xcoms[key] = (value, size)
        else:
            self._store({key: (value, size)})

    def _store(self, pending: xcoms.Pending) -> None:
        if not xcoms.store_while_running(self.ti, pending):
            raise RuntimeError(f"task {self._task_label()} is no longer running try {self.ti.try_number}")

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
        """Rows {"task_id", "map_index", "value"} of one run of this tenant, ordered by task and map index;
        [] when the run does not exist here (another tenant's run never does). `task_ids` None (Airflow 2's
        "no task filter"): the rows of the task that stored `key` last. `include_prior_dates`: each task's
        rows from the latest run of `dag_id` at or before this task's run, by logical date, that has any."""
        key = _text(key, "key")
        ordering: tuple[str, ...] = ("task_id", "map_index")
        if include_prior_dates:
            moment = self.ti.dag_run.logical_date or self.ti.dag_run.run_after
            runs = self._runs(dag_id).filter(logical_date__lte=moment)
            xcoms = XCom.objects.for_tenant(self.tenant_id).filter(dag_run__in=runs, key=key)
            ordering = ("task_id", "-dag_run__logical_date", "-dag_run_id", "map_index")  # latest run first
        else:
            run = self._runs(dag_id).filter(run_id=_text(run_id, "run_id")).first()
            if run is None:
                return []
            xcoms = XCom.objects.for_tenant(self.tenant_id).filter(dag_run=run, key=key)
            if task_ids is None:
                latest = xcoms.order_by("-timestamp", "-pk").values_list("task_id", flat=True).first()
                task_ids = [latest] if latest is not None else []
        if task_ids is not None:
            task_ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
            xcoms = xcoms.filter(task_id__in=[_text(t, "task_ids") for t in task_ids])
        if map_indexes is not None:
            xcoms = xcoms.filter(map_index__in=[int(i) for i in map_indexes])
        rows: list[dict] = []
        run_of: dict[str, int] = {}  # task -> the one run its rows come from (the latest that has any)
        for task_id, map_index, value, run_pk in xcoms.order_by(*ordering).values_list(
            "task_id", "map_index", "value", "dag_run_id"
        ):
            if run_of.setdefault(task_id, run_pk) == run_pk:
                rows.append({"task_id": task_id, "map_index": map_index, "value": value})
        return rows

    # --- secrets ------------------------------------------------------------------------------------

    def mask_secret(self, *, value: str) -> None:
        """Mask `value` in this try's log from now on."""
        self.masker.add(_text(value, "value"))

    # --- other runs of the tenant -------------------------------------------------------------------

    def trigger_dag_run(
        self, *, dag_id: str, run_id: str | None, conf: dict, logical_date: str | None, reset_dag_run: bool
    ) -> dict:
        """Create a manual run of a DAG of this tenant: {"run_id", "state", "logical_date",
        "already_exists"}. An existing run (same run_id or logical date) is returned as it is, or with
        `reset_dag_run` cleared to run again, as Airflow does: the same run (its tries' history kept, its conf
        unchanged, as Airflow never changes a run's conf) with every task instance cleared, back to queued
        if it had finished. DagNotFound for a DAG this tenant does not have."""
        from scheduler import services

        dag = (
            Dag.objects.for_tenant(self.tenant_id)
            .filter(dag_id=_text(dag_id, "dag_id"), is_active=True, active_version__isnull=False)
            .first()
        )
        if dag is None:
            raise sdk_exceptions.DagNotFound(f"Dag id {dag_id} not found")
        if conf is not None and not isinstance(conf, dict):
            raise TypeError("conf must be a JSON object")
        moment = _parse_datetime(logical_date) if logical_date else datetime.now(UTC)
        existing = self._existing_run(dag, run_id, moment)
        if existing is not None and not reset_dag_run:
            return _run_summary(existing, already_exists=True)
        try:
            if existing is not None:
                log.info("reset_dag_run: clearing run %s of %s", existing.run_id, dag.dag_id)
                services.clear_run(tenant=dag.tenant, actor=self.actor, run=existing)
                return _run_summary(existing, already_exists=True)
            with transaction.atomic():
                run = services.create_dag_run(
                    tenant=dag.tenant,
                    dag=dag,
                    actor=self.actor,
                    run_type=RunType.MANUAL,
                    logical_date=moment,
                    data_interval=None,
                    conf=conf or {},
                    run_id=run_id or None,
                )
        except DomainError as error:
            raise sdk_exceptions.AirflowException(str(error)) from None
        return _run_summary(run, already_exists=False)

    def get_dag_run_state(self, *, dag_id: str, run_id: str) -> str | None:
        """The state of a run of this tenant, or None."""
        return (
            self._runs(dag_id).filter(run_id=_text(run_id, "run_id")).values_list("state", flat=True).first()
        )

    def count_task_states(
        self,
        *,
        dag_id: str,
        task_ids: list[str] | None,
        task_group_id: str | None,
        logical_dates: list[str],
        states: list[str],
    ) -> int:
        """How many task instances of the DAG's runs at these logical dates are in these states; limited to
        `task_ids`, or to the tasks of `task_group_id` (nested groups included) as each run's version
        defines them."""
        runs = self._runs(dag_id).filter(logical_date__in=[_parse_datetime(d) for d in logical_dates or []])
        tis = TaskInstance.objects.for_tenant(self.tenant_id).filter(
            dag_run__in=runs, state__in=_states(states)
        )
        if task_ids is not None:
            return tis.filter(task_id__in=[_text(t, "task_ids") for t in task_ids]).count()
        if task_group_id:
            total = 0
            for run in runs.select_related("dag_version"):
                members = _group_task_ids(serialized_of(run.dag_version), task_group_id)
                total += tis.filter(dag_run=run, task_id__in=members).count()
            return total
        return tis.count()

    def count_dag_runs(self, *, dag_id: str, logical_dates: list[str], states: list[str]) -> int:
        """How many runs of the DAG at these logical dates are in these states."""
        runs = self._runs(dag_id).filter(logical_date__in=[_parse_datetime(d) for d in logical_dates or []])
        return runs.filter(state__in=[str(s) for s in states or []]).count()

    # --- assets -------------------------------------------------------------------------------------

    def get_asset_events(
        self, *, uri: str | None = None, name: str | None = None, alias: str | None = None
    ) -> list[dict]:
        """The tenant's events of the asset at `uri` or named `name`, or those added through the AssetAlias
        `alias`: the latest INLET_EVENTS_MAX, oldest first."""
        events = AssetEvent.objects.for_tenant(self.tenant_id)
        if alias is not None:
            events = events.filter(source_alias=_text(alias, "alias"))
        elif name is not None:
            events = events.filter(asset__name=_text(name, "name"))
        else:
            events = events.filter(asset__uri=_text(uri, "uri"))
        latest = events.select_related("asset", "source_dag_run__dag").order_by("-timestamp", "-pk")
        return [event.for_task() for event in reversed(latest[:INLET_EVENTS_MAX])]

    def get_asset(self, *, name: str) -> dict | None:
        """The tenant's asset named `name` ({"name", "uri", "group", "extra"}), or None."""
        asset = (
            Asset.objects.for_tenant(self.tenant_id).filter(name=_text(name, "name")).order_by("pk").first()
        )
        if asset is None:
            return None
        return {"name": asset.name, "uri": asset.uri, "group": asset.group, "extra": asset.extra}

    # --- the UI -------------------------------------------------------------------------------------

    def task_url(self) -> str:
        """This task instance's page in the UI (its tries' logs), as a user reaches it (TRADEWIND_BASE_URL)."""
        kwargs = {
            "tenant_slug": self.ti.tenant.slug,
            "dag_id": self.ti.dag_run.dag.dag_id,
            "run_id": self.ti.dag_run.run_id,
            "task_id": self.ti.task_id,
        }
        if self.ti.map_index >= 0:
            path = reverse("ui-ti-mapped", kwargs={**kwargs, "map_index": self.ti.map_index})
        else:
            path = reverse("ui-ti", kwargs=kwargs)
        return settings.TRADEWIND_BASE_URL + path

    # --- helpers ------------------------------------------------------------------------------------

    def _runs(self, dag_id: str) -> Any:
        return DagRun.objects.for_tenant(self.tenant_id).filter(dag__dag_id=_text(dag_id, "dag_id"))

    def _existing_run(self, dag: Dag, run_id: str | None, moment: datetime) -> DagRun | None:
        runs = DagRun.objects.for_tenant(self.tenant_id).filter(dag=dag)
        if run_id:
            found = runs.filter(run_id=_text(run_id, "run_id")).first()
            if found is not None:
                return found
        return runs.filter(logical_date=moment).first()

    def _task_label(self) -> str:
        suffix = f"[{self.ti.map_index}]" if self.ti.map_index >= 0 else ""
        return f"{self.ti.dag_run.dag.dag_id}.{self.ti.task_id}{suffix}"


def _run_summary(run: DagRun, *, already_exists: bool) -> dict:
    return {
        "run_id": run.run_id,
        "state": run.state,
        "logical_date": run.logical_date.isoformat() if run.logical_date else None,
        "already_exists": already_exists,
    }


def _group_task_ids(serialized: dict, group_id: str) -> list[str]:
    prefix = f"{group_id}."
    return [
        task["task_id"]
        for task in serialized.get("tasks", [])
        if (task.get("group_id") or "") == group_id or (task.get("group_id") or "").startswith(prefix)
    ]


def _states(states: list[Any] | None) -> list[str]:
    """Airflow passes None for "no state"; Tradewind stores it as the value "none"."""
    return [TIState.NONE.value if state is None else str(state) for state in states or []]


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    return value


def _parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"a date must be an ISO 8601 string, not {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
