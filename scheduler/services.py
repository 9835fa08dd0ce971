"""Run-level services: create runs, evaluate them, queue, start and finish task instances, resume deferrals;
and run control — pause, trigger, clear, mark, delete, backfills, pools — for the API, the UI and commands.

Every decision about what a run does next comes from `scheduler.evaluation` (pure logic); these functions
load its input in a few queries, write its decisions in bulk through the state machine (each bulk update
fenced on the state it read), record audit entries and publish events once the transaction commits.
`dags test` and the production scheduler call exactly these.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from scheduler import evaluation, events, queries, wakeup, xcoms
from scheduler.assets import event_keys, schedule_keys
from scheduler.evaluation import DagSpec, Decisions, PastRun, TISnapshot
from scheduler.models import (
    DEFAULT_POOL,
    NO_MAP_INDEX,
    Asset,
    AssetDagRunQueue,
    AssetEvent,
    Backfill,
    Dag,
    DagRun,
    DagVersion,
    Pool,
    TaskInstance,
    TaskInstanceHistory,
    XCom,
)
from scheduler.states import (
    ALLOWED,
    FINISHED,
    RUN_FINISHED,
    DagRunState,
    InvalidTransition,
    RunType,
    TIState,
    transition,
    transition_and_write,
    transition_row_and_read,
    transition_run,
    update_row,
)
from tradewind.audit.actions import AuditAction
from tradewind.audit.services import record as audit
from tradewind.errors import Conflict, Invalid, NotFound

if TYPE_CHECKING:
    from django.http import HttpRequest

    from tenants.models import Tenant
    from tradewind.accounts.actors import Actor

logger = logging.getLogger(__name__)

S = TIState
_CACHE_SIZE = 32
_serialized_cache: OrderedDict[tuple[int, str], dict] = OrderedDict()
_spec_cache: OrderedDict[tuple[int, str], DagSpec] = OrderedDict()
_cache_lock = threading.Lock()
_cache_loading: dict[tuple[int, tuple[int, str]], threading.Lock] = {}  # (cache, key) -> its loader's lock
# Hot paths load DAG versions without their (large) serialization; serialized_of() reads it once per process.
WITHOUT_SERIALIZED = "dag_version__serialized"


# --- DAG versions and params ------------------------------------------------------------------------------


def _cached(cache: OrderedDict, key: tuple[int, str], make: Callable[[], Any]) -> Any:
    """cache[key], made once per process: threads that miss the same key at once (a fresh worker's first
    tasks, all of one DAG) wait for the first one's make() instead of each reading and decoding the version."""
    with _cache_lock:
        value = cache.get(key)
        if value is not None:
            cache.move_to_end(key)
            return value
        loading = _cache_loading.setdefault((id(cache), key), threading.Lock())
    with loading:
        with _cache_lock:
            value = cache.get(key)
        if value is not None:
            return value
        try:
            value = make()
            with _cache_lock:
                cache[key] = value
                if len(cache) > _CACHE_SIZE:
                    cache.popitem(last=False)
        finally:
            with _cache_lock:
                _cache_loading.pop((id(cache), key), None)
        return value


def serialized_of(version: DagVersion) -> dict:
    """A DAG version's serialization, decoded once per process (versions never change; the key includes
    the hash, so a reused primary key can never serve another version's JSON). Works on a version loaded
    with the serialization deferred, which the engine's hot paths do: it is up to a megabyte per DAG."""
    if "serialized" in version.__dict__:
        return version.serialized

    def load() -> dict:
        return DagVersion.objects.values_list("serialized", flat=True).get(pk=version.pk)

    return _cached(_serialized_cache, (version.pk, version.hash), load)


def get_dag_spec(version: DagVersion) -> DagSpec:
    """The engine's reading of a DAG version (cached per version; versions never change)."""
    return _cached(
        _spec_cache, (version.pk, version.hash), lambda: DagSpec.from_serialized(serialized_of(version))
    )


def get_dag_params(dag_version: DagVersion) -> dict[str, Any]:
    """The DAG's params with their defaults (None where a param has no default)."""
    return {
        name: param.get("default") for name, param in (dag_version.serialized.get("params") or {}).items()
    }


def validate_conf(dag_version: DagVersion, conf: Mapping[str, Any] | None) -> dict[str, Any]:
    """The params a run with this conf sees (conf overrides params, as Airflow's default), every value
    checked against its param's schema; Invalid names the first bad or missing param."""
    from tradewind.sdk.exceptions import ParamValidationError
    from tradewind.sdk.params import ParamsDict

    if conf is not None and not isinstance(conf, Mapping):
        raise Invalid("conf must be a JSON object")
    params = ParamsDict.deserialize(dag_version.serialized.get("params") or {})
    try:
        return params.resolve(dict(conf or {}))
    except ParamValidationError as error:
        raise Invalid(f"invalid conf for DAG {dag_version.dag.dag_id!r}: {error}") from None


# --- Runs -------------------------------------------------------------------------------------------------


def run_event(run: DagRun) -> dict:
    """The event published when a run changes state."""
    return {
        "tenant": run.tenant_id,
        "dag_id": run.dag.dag_id,
        "run_id": run.run_id,
        "task_id": None,
        "map_index": None,
        "state": str(run.state),
        "try_number": None,
    }


def ti_event(run: DagRun, task_id: str, map_index: int, state: str, try_number: int) -> dict:
    """The event published when a task instance changes state."""
    return {
        "tenant": run.tenant_id,
        "dag_id": run.dag.dag_id,
        "run_id": run.run_id,
        "task_id": task_id,
        "map_index": map_index,
        "state": str(state),
        "try_number": try_number,
    }


@transaction.atomic
def create_dag_run(
    *,
    tenant: Tenant,
    dag: Dag,
    actor: Actor,
    run_type: RunType,
    logical_date: datetime | None,
    data_interval: tuple[datetime, datetime] | None,
    conf: dict | None = None,
    run_id: str | None = None,
    dag_version: DagVersion | None = None,
    note: str = "",
    backfill: Backfill | None = None,
    audit_action: AuditAction = AuditAction.RUN_CREATED,
    request: HttpRequest | None = None,
) -> DagRun:
    """Create a queued run pinned to `dag_version` (default: the DAG's active version) with one task
    instance per task (a mapped task gets its placeholder at map index -1 until it expands).

    `conf` is validated against the DAG's params (Invalid); a run id or logical date the DAG already has
    is a Conflict. Without a data interval, a manual run infers one from the schedule as Airflow does.
    The audit entry is `audit_action` (trigger_run records run.triggered with the request).
    """
    if dag.tenant_id != tenant.pk:
        raise Invalid("the DAG belongs to another tenant")
    version = dag_version or dag.active_version
    if version is None:
        raise Conflict(f"DAG {dag.dag_id!r} has no parsed version to run")
    if version.dag_id != dag.pk:
        raise Invalid("the DAG version belongs to another DAG")
    conf = dict(conf or {})
    validate_conf(version, conf)
    now = timezone.now()
    if data_interval is None and logical_date is not None:
        data_interval = _infer_data_interval(version, run_type, logical_date)
    run_id = run_id or _generate_run_id(run_type, logical_date or now, random_suffix=logical_date is None)
    runs = DagRun.objects.for_tenant(tenant).filter(dag=dag)
    if runs.filter(run_id=run_id).exists():
        raise Conflict(f"DAG {dag.dag_id!r} already has a run with run_id {run_id!r}")
    if logical_date is not None and runs.filter(logical_date=logical_date).exists():
        raise Conflict(f"DAG {dag.dag_id!r} already has a run with logical date {logical_date.isoformat()}")
    if run_type == RunType.MANUAL:
        run_after = now
    else:
        run_after = (data_interval[1] if data_interval else None) or logical_date or now
    run = DagRun.objects.create(
        tenant=tenant,
        dag=dag,
        dag_version=version,
        run_id=run_id,
        run_type=run_type,
        state=DagRunState.QUEUED,
        logical_date=logical_date,
        data_interval_start=data_interval[0] if data_interval else None,
        data_interval_end=data_interval[1] if data_interval else None,
        run_after=run_after,
        conf=conf,
        external_trigger=run_type == RunType.MANUAL,
        triggered_by_id=actor.user_id if actor.kind in ("user", "token") else None,
        queued_at=now,
        note=note,
        backfill=backfill,
    )
    spec = get_dag_spec(version)
    TaskInstance.objects.bulk_create(
        [_new_ti(run, spec.tasks[task_id], NO_MAP_INDEX, S.NONE) for task_id in spec.order]
    )
    audit(
        tenant=tenant,
        actor=actor,
        action=audit_action,
        obj=run,
        after={"dag_id": dag.dag_id, "run_id": run_id, "run_type": str(run_type), "conf": conf},
        request=request,
    )
    events.publish_on_commit([run_event(run)])
    return run


def _infer_data_interval(
    version: DagVersion, run_type: RunType, logical_date: datetime
) -> tuple[datetime, datetime]:
    if run_type == RunType.MANUAL and version.serialized.get("schedule"):
        from tradewind.sdk.timetables import timetable_from_serialized

        try:
            interval = timetable_from_serialized(version.serialized["schedule"]).infer_manual_data_interval(
                run_after=logical_date
            )
            return interval.start, interval.end
        except (ValueError, KeyError, NotImplementedError):
            logger.info("no manual data interval for this schedule", extra={"dag_version": version.pk})
    return logical_date, logical_date


def _generate_run_id(run_type: RunType, moment: datetime, *, random_suffix: bool) -> str:
    """Airflow's run id: "<run_type>__<ISO date>" (Airflow 3 adds a random suffix without a logical date)."""
    run_id = f"{run_type}__{moment.isoformat()}"
    return f"{run_id}_{secrets.token_hex(4)}" if random_suffix else run_id


def _new_ti(run: DagRun, task: evaluation.TaskSpec, map_index: int, state: str) -> TaskInstance:
    return TaskInstance(
        tenant_id=run.tenant_id,
        dag_run=run,
        task_id=task.task_id,
        map_index=map_index,
        state=state,
        max_tries=task.retries,
        operator=task.operator[:200],
        pool=task.pool,
        pool_slots=task.pool_slots,
        queue=task.queue,
        priority_weight=task.priority_weight,
    )


def schedule_run(run: DagRun, *, now: datetime | None = None) -> list[TaskInstance]:
    """evaluate_run, then the run's SCHEDULED task instances (ready to queue, highest priority first)."""
    if not evaluate_run(run, now=now):
        return []
    return list(
        TaskInstance.objects.filter(dag_run=run, state=S.SCHEDULED)
        .select_related("dag_run")
        .order_by("-priority_weight", "pk")
    )


# evaluate_run's reads (every scheduling pass makes them for every running run), compiled once.
_RUN_TO_EVALUATE = queries.PreparedRead(
    lambda run_id: (
        DagRun.objects.select_for_update(of=("self",))
        .select_related("dag", "dag_version")
        .defer(WITHOUT_SERIALIZED)
        .filter(pk=run_id)
    )
)
_SNAPSHOTS = queries.PreparedRead(
    lambda run_id: TaskInstance.objects.filter(dag_run_id=run_id).values_list(
        "pk", "task_id", "map_index", "state", "try_number", "next_retry_at"
    )
)


def evaluate_run(run: DagRun, *, now: datetime | None = None) -> bool:
    """Evaluate `run` once and write the decisions; True while the run is running afterwards.

    A queued run starts (callers that enforce max_active_runs only pass runs they started). Everything
    `evaluation.evaluate` decides is applied in this one call: trigger rules with skip and upstream_failed
    propagation, mapping expansion, due retries and reschedules, removed tasks, dagrun_timeout, deadlock,
    the run's final state. Concurrent calls for one run are serialised by a lock on the run's row.
    `run` is updated in place (state, dates, failure_reason).
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = _RUN_TO_EVALUATE.get(run.pk)
        if locked is None or locked.state in RUN_FINISHED:
            if locked is not None:
                run.state = locked.state
            return False
        spec = get_dag_spec(locked.dag_version)
        snapshots = [
            TISnapshot(task_id=t, map_index=mi, state=state, try_number=tn, next_retry_at=nra, pk=pk)
            for pk, t, mi, state, tn, nra in _SNAPSHOTS.all(locked.pk)
        ]
        decisions = evaluation.evaluate(
            spec,
            snapshots,
            now=now,
            run_state=locked.state,
            run_start_date=locked.start_date,
            xcom_lengths=_xcom_lengths(locked, spec, snapshots),
            past=_past_run(locked, spec, snapshots),
        )
        if not decisions.is_empty:
            _apply(locked, spec, decisions, now)
        for name in ("state", "start_date", "end_date", "failure_reason"):
            setattr(run, name, getattr(locked, name))
        return locked.state == DagRunState.RUNNING


def _xcom_lengths(
    run: DagRun, spec: DagSpec, snapshots: list[TISnapshot]
) -> dict[tuple[str, int, str], int | None]:
    """Lengths of the XComs that mapped tasks ready to expand expand over: loaded only when an unexpanded
    task's sources have all succeeded; a mapped source's values are counted, not loaded."""
    succeeded: dict[str, bool] = {}
    for s in snapshots:
        succeeded[s.task_id] = succeeded.get(s.task_id, True) and s.state == S.SUCCESS
    refs: set[tuple[str, str]] = set()
    for s in snapshots:
        task = spec.tasks.get(s.task_id)
        if s.map_index == NO_MAP_INDEX and s.state == S.NONE and task is not None and task.needs_expansion:
            wanted = spec.expansion_refs(s.task_id)
            if wanted and all(succeeded.get(t, False) for t, _ in wanted):
                refs |= wanted
    if not refs:
        return {}
    lengths: dict[tuple[str, int, str], int | None] = {}
    rows = XCom.objects.filter(dag_run=run)
    counted = Q()
    loaded = Q()
    for task_id, key in refs:
        if spec.is_mapped_source(task_id):
            counted |= Q(task_id=task_id, key=key)
        else:
            loaded |= Q(task_id=task_id, key=key)
    if counted:
        for t, mi, k in rows.filter(counted).values_list("task_id", "map_index", "key"):
            lengths[(t, mi, k)] = None
    if loaded:
        for t, mi, k, value in rows.filter(loaded).values_list("task_id", "map_index", "key", "value"):
            lengths[(t, mi, k)] = len(value) if isinstance(value, list | dict) else None
    return lengths


def _past_run(run: DagRun, spec: DagSpec, snapshots: list[TISnapshot]) -> PastRun | None:
    """The previous run's task states, when a task waiting to run depends on the past: by logical date,
    only scheduled runs when the DAG catches up (Airflow's get_previous_(scheduled_)dagrun)."""
    waiting = {s.task_id for s in snapshots if s.state == S.NONE and s.task_id in spec.tasks}
    if not any(spec.tasks[t].depends_on_past for t in waiting):
        return None
    previous = queries.get_previous_run(run, scheduled_only=spec.catchup)
    if previous is None:
        return None
    states: dict[str, list[str]] = defaultdict(list)
    for task_id, state in TaskInstance.objects.filter(dag_run=previous).values_list("task_id", "state"):
        states[task_id].append(state)
    return PastRun(states={t: tuple(s) for t, s in states.items()})


def _apply(run: DagRun, spec: DagSpec, decisions: Decisions, now: datetime) -> None:
    """Write one evaluation's decisions: bulk updates grouped by (old state, new state), fenced on the old
    state; new rows in one insert; the run's transition; events after commit."""
    published: list[dict] = []
    groups: dict[tuple[str, str, int | None], list[evaluation.TIChange]] = defaultdict(list)
    for change in decisions.changes:
        groups[(change.old_state, change.new_state, change.new_map_index)].append(change)
    for (old, new, new_map_index), changes in groups.items():
        fields, computed = _fields_for(new, now)
        if new_map_index is not None:
            fields["map_index"] = new_map_index
        moved = _transition_many([c.pk for c in changes], old, new, computed=computed, **fields)
        if moved != len(changes):
            logger.info(
                "some task instances changed state while the run was evaluated",
                extra={
                    "run_id": run.run_id,
                    "from": old,
                    "to": new,
                    "expected": len(changes),
                    "moved": moved,
                },
            )
        published += [ti_event(run, c.task_id, _index(c), new, c.try_number) for c in changes]
    if decisions.creates:
        TaskInstance.objects.bulk_create(
            [_new_ti(run, spec.tasks[n.task_id], n.map_index, n.state) for n in decisions.creates]
        )
        published += [ti_event(run, n.task_id, n.map_index, n.state, 0) for n in decisions.creates]
    for label, note in decisions.notes.items():
        logger.warning("task instance failed upstream: %s", note, extra={"run_id": run.run_id, "ti": label})
    # The evaluation reached a fixpoint and its pass queues what it scheduled: its task instances' changes
    # need no wake-up (waking the scheduler that made them would only cost it a pass); a run that ended may
    # let a queued run start.
    events.publish_on_commit(published, wake=False)
    if decisions.run_state is not None and _transition_run_to(
        run, DagRunState(decisions.run_state), now, decisions.failure_reason
    ):
        events.publish_on_commit([run_event(run)])


def _index(change: evaluation.TIChange) -> int:
    return change.map_index if change.new_map_index is None else change.new_map_index


def _fields_for(state: str, now: datetime) -> tuple[dict[str, Any], dict[str, tuple[str, list[Any]]]]:
    """What a bulk move to `state` sets: plain fields, and computed ones (see update_row). A finished task
    instance ends now and keeps its start (one that never started starts as it ends)."""
    if state in FINISHED:
        return {"end_date": now}, {"start_date": ("COALESCE({start_date}, %s)", [now])}
    if state == S.SCHEDULED:
        return {"next_retry_at": None}, {}
    return {}, {}


def _transition_many(
    pks: Iterable[int | None],
    old: str,
    new: str,
    *,
    computed: dict[str, tuple[str, list[Any]]] | None = None,
    **fields: Any,
) -> int:
    """transition() for many rows read in the same state: legal per the state machine, fenced on `old`;
    returns how many moved (fewer when someone moved some first). `computed` as in update_row."""
    if new != old and new not in ALLOWED[TIState(old)]:
        raise InvalidTransition(old, new)
    ids = [pk for pk in pks if pk is not None]
    if not ids:
        return 0
    return update_row(TaskInstance, {"id": ids, "state": old}, {"state": new, **fields}, computed)


def _transition_run_to(run: DagRun, state: DagRunState, now: datetime, failure_reason: str = "") -> bool:
    fields: dict[str, Any] = {}
    if state == DagRunState.RUNNING:
        fields["start_date"] = run.start_date or now
    elif state in RUN_FINISHED:
        fields.update(start_date=run.start_date or now, end_date=now, failure_reason=failure_reason[:10000])
    if not transition_run(run, state, **fields):
        return False
    if state in RUN_FINISHED:
        from tradewind.accounts.actors import Actor

        audit(
            tenant=run.tenant,
            actor=Actor.system("scheduler"),
            action=AuditAction.RUN_FINISHED,
            obj=run,
            after={"state": str(state), "failure_reason": failure_reason},
        )
    return True


# --- Task instances ---------------------------------------------------------------------------------------


_TO_QUEUE = queries.PreparedRead(
    lambda ti_ids: (
        TaskInstance.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(pk__in=ti_ids, state=S.SCHEDULED, dag_run__state=DagRunState.RUNNING)
        .select_related("dag_run", "dag_run__dag")
        .order_by("-priority_weight", "pk")
    )
)


def queue_task_instances(tis: list[TaskInstance]) -> list[TaskInstance]:
    """Move scheduled task instances to queued, highest priority first, within each run's DAG
    max_active_tasks (queued + running in the run); returns those moved.

    A new try starts here (try_number + 1), so the executor's message is (ti id, try_number); a task
    instance resuming the same try (after a reschedule or a deferral) keeps its try_number, as in Airflow.
    Rows another caller moved or holds, and rows of runs that are not running, are left out."""
    if not tis:
        return []
    now = timezone.now()
    # No savepoint: nothing here is retried after an error, which fails the caller's transaction anyway.
    with transaction.atomic(savepoint=False):
        candidates = _TO_QUEUE.all([ti.pk for ti in tis])
        if not candidates:
            return []
        active = queries.count_active_task_instances({ti.dag_run_id for ti in candidates})
        chosen: list[TaskInstance] = []
        for ti in candidates:
            if active.get(ti.dag_run_id, 0) >= ti.dag_run.dag.max_active_tasks:
                continue
            active[ti.dag_run_id] = active.get(ti.dag_run_id, 0) + 1
            chosen.append(ti)
        ended = _ended_tries([ti for ti in chosen if ti.try_number > 0])
        new_try = {ti.pk for ti in chosen if ti.try_number == 0 or (ti.pk, ti.try_number) in ended}
        same_try = [ti.pk for ti in chosen if ti.pk not in new_try]
        if new_try:
            _transition_many(
                new_try,
                S.SCHEDULED,
                S.QUEUED,
                computed={"try_number": ("{try_number} + 1", [])},
                queued_at=now,
            )
        if same_try:
            _transition_many(same_try, S.SCHEDULED, S.QUEUED, queued_at=now)
        for ti in chosen:
            ti.state, ti.queued_at = S.QUEUED, now
            if ti.pk in new_try:
                ti.try_number += 1
        events.publish_on_commit(
            ti_event(ti.dag_run, ti.task_id, ti.map_index, ti.state, ti.try_number) for ti in chosen
        )
    return chosen


def _ended_tries(tis: list[TaskInstance]) -> set[tuple[int, int]]:
    """(ti id, try_number) of tries that have ended (they have a history row: failed, then retried or
    cleared); a try without one paused (reschedule, deferral) or never started."""
    if not tis:
        return set()
    return set(
        TaskInstanceHistory.objects.filter(task_instance_id__in=[ti.pk for ti in tis]).values_list(
            "task_instance_id", "try_number"
        )
    )


_TI_FOR_RUNNER = queries.PreparedRead(
    lambda ti_id: (
        TaskInstance.objects.select_related("dag_run__dag", "dag_run__dag_version__bundle_version")
        .defer(f"dag_run__{WITHOUT_SERIALIZED}")
        .filter(pk=ti_id)
    )
)


def load_for_runner(ti_id: int) -> TaskInstance | None:
    """The task instance with its run, DAG and pinned version (what the runner uses of a try), or None."""
    return _TI_FOR_RUNNER.get(ti_id)


def warm_up_thread() -> None:
    """Open this thread's database connection and compile a try's start and finish (a success with and
    without a returned value), and on PostgreSQL have them prepared: what a worker thread would otherwise do
    during its first tasks. Each runs on an id no row has, with parameters of the types a real try's have,
    once more than the prepare threshold: psycopg prepares a statement on the run after that many."""
    from django.db import connection

    connection.ensure_connection()
    marker = _TI_FOR_RUNNER.MARKER
    for _ in range((connection.settings_dict.get("OPTIONS", {}).get("prepare_threshold") or 0) + 1):
        start_task_instance(tenant_id=marker, ti_id=marker, try_number=0, hostname="", pid=os.getpid())
        for pending in ({}, {"return_value": ("", 2)}):
            run = DagRun(pk=marker, tenant_id=marker, dag=Dag(pk=marker), dag_version=DagVersion(pk=marker))
            ti = TaskInstance(
                pk=marker,
                tenant_id=marker,
                dag_run=run,
                state=S.RUNNING,
                try_number=0,
                start_date=timezone.now(),
            )
            finish_task_instance(ti, {"state": S.SUCCESS, "rendered_fields": {}}, pending)


def start_task_instance(
    *, tenant_id: int, ti_id: int, try_number: int, hostname: str, pid: int | None
) -> TaskInstance | None:
    """queued → running for exactly this try (fenced on state and try_number); None when the message is a
    duplicate or late (the task instance is not queued for this try any more).

    Every try pays for this, so it is one statement (on PostgreSQL; elsewhere two): an UPDATE that needs
    nothing read first (a task instance resuming after a deferral keeps its try's start date; the first
    try's start is kept across tries), returning the task instance with its run, DAG and pinned version,
    which the runner goes on using. None too when its run was deleted the moment it started."""
    now = timezone.now()
    ti = transition_row_and_read(
        TaskInstance,
        _TI_FOR_RUNNER,
        ti_id,
        try_number,
        S.QUEUED,
        S.RUNNING,
        tenant_id=tenant_id,
        hostname=hostname[:250],
        pid=pid,
        heartbeat_at=now,
        end_date=None,
        computed={
            "start_date": ("CASE WHEN {next_method} = '' THEN %s ELSE {start_date} END", [now]),
            "first_try_start_date": ("COALESCE({first_try_start_date}, %s)", [now]),
        },
    )
    if ti is None:
        return None
    events.publish_on_commit([ti_event(ti.dag_run, ti.task_id, ti.map_index, S.RUNNING, try_number)])
    return ti


def finish_task_instance(
    ti: TaskInstance, outcome: dict, pending_xcoms: xcoms.Pending | None = None
) -> TaskInstance:
    """Record the outcome of a running try (SDK_SPEC.md "Outcome") and return the task instance.
    `pending_xcoms` are the try's pushes not written yet (TaskRpcHandler's defer_xcoms): with a success
    they are written in the same statement, else first, fenced on the try still running.

    success (then the branch's "followed" / short-circuit's "skip_downstream" skips), skipped, failed
    (up_for_retry with Airflow's retry delay unless fail_fast or out of tries; a history row for the try),
    up_for_reschedule until reschedule_date, deferred with its trigger. Rendered fields, the map index
    label and asset events are stored. A try a user cleared while it ran (restarting) ends here: its
    history row is written and the task instance goes back to none, to run again. A task instance that is
    no longer running this try otherwise (a dagrun timeout skipped it, a user marked it, a duplicate
    finish, its run deleted) is left as it is."""
    now = timezone.now()
    state = outcome.get("state")
    run = _run_of(ti)
    if run is None:
        return ti
    common: dict[str, Any] = {"end_date": now, "error": str(outcome.get("error") or "")}
    if ti.start_date is not None:
        common["duration"] = (now - ti.start_date).total_seconds()
    if outcome.get("rendered_fields") is not None:
        common["rendered_fields"] = outcome["rendered_fields"]
    if outcome.get("map_index_label"):
        common["map_index_label"] = str(outcome["map_index_label"])[:250]
    done = {"trigger": None, "trigger_timeout_at": None, "next_method": "", "next_kwargs": None}
    # Most tries end in one fenced UPDATE, which needs no transaction; a failure (with its history row or
    # audit entry), a branch's skips and asset events are written all or nothing.
    with nullcontext() if _one_write(outcome) else transaction.atomic():
        if pending_xcoms and state != S.SUCCESS and ti.state == S.RUNNING:
            xcoms.store_while_running(ti, pending_xcoms)
        if ti.state != S.RUNNING:
            moved = False
        elif state == S.SUCCESS:
            writes = xcoms.writes_with_move(ti, pending_xcoms or {})
            moved = transition_and_write(ti, S.SUCCESS, writes, **common, **done)
            if moved:
                _skip_for_outcome(run, ti, outcome)
                _record_asset_events(run, ti, outcome.get("asset_events") or [])
        elif state == S.SKIPPED:
            moved = transition(ti, S.SKIPPED, **common, **done)
        elif state == S.UP_FOR_RESCHEDULE:
            moved = transition(
                ti, S.UP_FOR_RESCHEDULE, next_retry_at=_parse(outcome.get("reschedule_date")) or now, **common
            )
        elif state == S.DEFERRED:
            trigger = outcome.get("trigger") or {}
            timeout_s = trigger.get("timeout_s")
            moved = transition(
                ti,
                S.DEFERRED,
                trigger=trigger,
                trigger_timeout_at=now + timedelta(seconds=timeout_s) if timeout_s is not None else None,
                next_method=str(trigger.get("method_name") or "execute_complete"),
                next_kwargs=trigger.get("next_kwargs") or {},
            )
        else:
            if state != S.FAILED:
                common["error"] = f"unknown outcome state {state!r}; {common['error']}"
            task = get_dag_spec(run.dag_version).tasks.get(ti.task_id)
            moved = _fail(run, task, ti, now, common, fail_fast=bool(outcome.get("fail_fast")))
        if not moved and ti.state in (S.RUNNING, S.RESTARTING):
            moved = _end_restarted_try(ti, str(state), now, common)
        if moved:
            events.publish_on_commit([ti_event(run, ti.task_id, ti.map_index, ti.state, ti.try_number)])
    return ti


def _run_of(ti: TaskInstance) -> DagRun | None:
    """The run of `ti` with its DAG and version: the one loaded with it (start_task_instance loads it), else
    read now; None when the run is gone. A run deleted after it was loaded changes nothing: its task
    instance went with it, so the fenced writes match no row."""
    if TaskInstance.dag_run.is_cached(ti):
        run = ti.dag_run
        if DagRun.dag.is_cached(run) and DagRun.dag_version.is_cached(run):
            return run
    return (
        DagRun.objects.select_related("dag", "dag_version")
        .defer(WITHOUT_SERIALIZED)
        .filter(pk=ti.dag_run_id)
        .first()
    )


def _one_write(outcome: dict) -> bool:
    """Whether recording `outcome` is a single fenced UPDATE of the task instance."""
    if outcome.get("state") == S.SUCCESS:
        return not (_has_skips(outcome) or outcome.get("asset_events"))
    return outcome.get("state") in (S.SKIPPED, S.UP_FOR_RESCHEDULE, S.DEFERRED)


def _fail(
    run: DagRun,
    task: evaluation.TaskSpec | None,
    ti: TaskInstance,
    now: datetime,
    common: dict,
    *,
    fail_fast: bool,
) -> bool:
    """A failed try: up_for_retry when tries are left (and the failure allows it), else failed."""
    done = {"trigger": None, "trigger_timeout_at": None, "next_method": "", "next_kwargs": None}
    retry = task is not None and not fail_fast and evaluation.can_retry(task, ti.try_number, ti.max_tries)
    start_date, hostname = ti.start_date, ti.hostname
    if retry:
        seed = f"{run.dag.dag_id}#{ti.task_id}#{run.run_id}#{ti.map_index}"
        next_at = evaluation.next_retry_at(task, ti.try_number, now, seed=seed)
        moved = transition(ti, S.UP_FOR_RETRY, next_retry_at=next_at, **common, **done)
    else:
        moved = transition(ti, S.FAILED, **common, **done)
    if not moved:
        return False
    if retry:
        TaskInstanceHistory.objects.create(
            tenant_id=ti.tenant_id,
            task_instance=ti,
            try_number=ti.try_number,
            state=S.FAILED,
            start_date=start_date,
            end_date=now,
            duration=common.get("duration"),
            hostname=hostname,
            error=common["error"],
        )
    else:
        from tradewind.accounts.actors import Actor

        audit(
            tenant=run.tenant,
            actor=Actor.system("scheduler"),
            action=AuditAction.TASK_FAILED,
            obj=ti,
            detail={
                "dag_id": run.dag.dag_id,
                "run_id": run.run_id,
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "try_number": ti.try_number,
                "error": common["error"][:2000],
            },
        )
    return True


def _skip_for_outcome(run: DagRun, ti: TaskInstance, outcome: dict) -> None:
    """Apply a branch's / short-circuit's skips to task instances that have not started."""
    if not _has_skips(outcome):
        return
    spec = get_dag_spec(run.dag_version)
    skips = evaluation.skips_for_outcome(spec, ti.task_id, ti.map_index, outcome)
    if not skips:
        return
    match = Q()
    for task_id, map_index in skips:
        match |= Q(task_id=task_id) if map_index is None else Q(task_id=task_id, map_index=map_index)
    targets = list(
        TaskInstance.objects.filter(match, dag_run=run, state__in=[S.NONE, S.SCHEDULED]).values_list(
            "pk", "task_id", "map_index", "state", "try_number"
        )
    )
    published = []
    fields, computed = _fields_for(S.SKIPPED, timezone.now())
    for old in (S.NONE, S.SCHEDULED):
        rows = [r for r in targets if r[3] == old]
        if rows:
            _transition_many([r[0] for r in rows], old, S.SKIPPED, computed=computed, **fields)
            published += [ti_event(run, r[1], r[2], S.SKIPPED, r[4]) for r in rows]
    events.publish_on_commit(published)


def _has_skips(outcome: dict) -> bool:
    """Whether the outcome is a branch's or a short-circuit's, which may skip task instances."""
    return outcome.get("followed") is not None or bool(outcome.get("skip_downstream"))


def _record_asset_events(run: DagRun, ti: TaskInstance, asset_events: list[dict]) -> None:
    """Store the task's asset events and queue them for the tenant's DAGs scheduled on those assets."""
    if not asset_events:
        return
    consumers: list[tuple[int, set[str]]] | None = None
    for item in asset_events:
        asset = _event_asset(run.tenant_id, item)
        if asset is None:
            continue
        AssetEvent.objects.create(
            tenant_id=run.tenant_id,
            asset=asset,
            source_dag_run=run,
            source_task_id=ti.task_id,
            source_map_index=ti.map_index,
            source_alias=str(item.get("alias") or "")[:1500],
            extra=item.get("extra") or {},
        )
        if consumers is None:
            consumers = [
                (pk, schedule_keys(schedule))
                for pk, schedule in Dag.objects.for_tenant(run.tenant_id)
                .filter(is_active=True)
                .exclude(schedule=None)
                .values_list("pk", "schedule")
            ]
        keys = event_keys(run.tenant_id, [asset])[asset.pk]  # the event just stored counts for its alias
        AssetDagRunQueue.objects.bulk_create(
            [
                AssetDagRunQueue(tenant_id=run.tenant_id, asset=asset, target_dag_id=pk)
                for pk, waited_on in consumers
                if keys & waited_on
            ],
            ignore_conflicts=True,
        )


def _event_asset(tenant_id: int, item: dict) -> Asset | None:
    """The asset a task's event is for. An Asset.ref outlet ("ref") is the stored asset it names by name or
    URI, and none when there is no such asset (Airflow too records nothing for it); an asset outlet's row is
    created on its first event if its DAG did not declare it."""
    uri = str(item.get("uri") or "")
    name = str(item.get("name") or "")[:1500]
    assets = Asset.objects.for_tenant(tenant_id)
    if item.get("ref"):
        if not (uri or name):
            return None
        return (assets.filter(uri=uri) if uri else assets.filter(name=name)).order_by("pk").first()
    if not uri:
        return None
    asset, created = assets.get_or_create(
        tenant_id=tenant_id,
        uri=uri,
        defaults={"name": name or uri, "group": str(item.get("group") or "")[:1500]},
    )
    if not created and name and asset.name == uri != name:  # first recorded without its name (an older task)
        asset.name = name
        asset.save(update_fields=["name"])
    return asset


def resume_deferred(ti: TaskInstance, *, event: dict | None, error: str | None = None) -> None:
    """A deferred task instance's trigger finished: it is scheduled again for the same try, resuming with
    next_method(event=payload); when the trigger failed or timed out, it resumes with Airflow's "__fail__"
    so the task itself fails in the sandbox (TaskDeferralTimeout for the error "Trigger/execution timeout",
    else TaskDeferralError) and its callbacks and retries apply."""
    with transaction.atomic():
        if ti.state != S.DEFERRED:
            return
        if error is None:  # a trigger may fire with no payload: Airflow resumes with event=None then
            fields = {"next_kwargs": {**(ti.next_kwargs or {}), "event": event}}
        else:
            fields = {"next_method": "__fail__", "next_kwargs": {"error": error or "Trigger failure"}}
        if transition(ti, S.SCHEDULED, trigger=None, trigger_timeout_at=None, **fields):
            run = DagRun.objects.select_related("dag").get(pk=ti.dag_run_id)
            events.publish_on_commit([ti_event(run, ti.task_id, ti.map_index, ti.state, ti.try_number)])


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


# --- Run control: what users (the API, the UI, the commands) do to DAGs, runs and task instances ----------
#
# Airflow's semantics throughout. Each function checks that its objects belong to `tenant` (another tenant's
# object is NotFound), writes through the state machine, records one audit entry in the same transaction and
# publishes its events (which wake the tenant's scheduler) once the transaction commits.

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+-]+$")  # Airflow's default allowed_run_id_pattern
MARKABLE = frozenset({S.SUCCESS, S.FAILED, S.SKIPPED})
# Airflow's "running" states when a run is marked failed: these fail, the other unfinished ones are skipped.
_RUNNING_STATES = frozenset({S.RUNNING, S.DEFERRED, S.UP_FOR_RESCHEDULE, S.RESTARTING})
# What a task instance forgets when it is cleared (its tries stay in TaskInstanceHistory).
_CLEARED_FIELDS: dict[str, Any] = {
    "start_date": None,
    "end_date": None,
    "duration": None,
    "queued_at": None,
    "next_retry_at": None,
    "first_try_start_date": None,
    "hostname": "",
    "pid": None,
    "heartbeat_at": None,
    "trigger": None,
    "trigger_timeout_at": None,
    "next_method": "",
    "next_kwargs": None,
    "error": "",
    "rendered_fields": None,
}
MAX_BACKFILL_RUNS = 10_000
DEFAULT_BACKFILL_MAX_ACTIVE_RUNS = 10  # Airflow's default for a backfill


def _belongs(tenant: Tenant, *objects: Any) -> None:
    """Another tenant's object is NotFound: its existence must not leak."""
    for obj in objects:
        if obj.tenant_id != tenant.pk:
            raise NotFound(f"no such {type(obj).__name__}")


def _dag_event(dag: Dag, state: str) -> dict:
    """The event published when something happens to a DAG itself (run_id and task_id are None)."""
    return {
        "tenant": dag.tenant_id,
        "dag_id": dag.dag_id,
        "run_id": None,
        "task_id": None,
        "map_index": None,
        "state": state,
        "try_number": None,
    }


def _wake_on_commit(tenant_id: int) -> None:
    transaction.on_commit(lambda: wakeup.notify(tenant_id))


def _lock_run(run_pk: int) -> DagRun:
    """The run's row, locked (as schedule_run locks it) so no evaluation interleaves with the change."""
    locked = (
        DagRun.objects.select_for_update(of=("self",))
        .select_related("dag", "dag_version", "tenant")
        .filter(pk=run_pk)
        .first()
    )
    if locked is None:
        raise NotFound("the run no longer exists")
    return locked


def _label(ti: TaskInstance) -> str:
    return queries.ti_label(ti.task_id, ti.map_index)


def _labels(tis: Iterable[TaskInstance], limit: int = 200) -> list[str]:
    return [_label(ti) for ti in tis][:limit]


# -- DAGs --


@transaction.atomic
def set_paused(
    *, tenant: Tenant, actor: Actor, dag: Dag, is_paused: bool, request: HttpRequest | None = None
) -> Dag:
    """Pause or unpause a DAG (Airflow's is_paused) and return it.

    A paused DAG gets no new scheduled, asset-triggered or backfill runs, and the scheduler stops scheduling
    the task instances of its running runs (the ones already queued or running finish; those it had
    scheduled but not yet queued go back to waiting). Unpausing works out the next scheduled run and wakes
    the scheduler. Setting the state it already has changes nothing.
    """
    _belongs(tenant, dag)
    locked = Dag.objects.select_for_update(of=("self",)).select_related("active_version").get(pk=dag.pk)
    if locked.is_paused == is_paused:
        return locked
    locked.is_paused = is_paused
    locked.save(update_fields=["is_paused"])
    published = [_dag_event(locked, "paused" if is_paused else "unpaused")]
    if is_paused:
        published += _unschedule_dag(locked)
    elif locked.active_version is not None:
        from scheduler.loop import refresh_next_dagrun

        refresh_next_dagrun(locked, locked.active_version.serialized)
        locked.refresh_from_db(
            fields=[
                "next_dagrun_create_after",
                "next_dagrun_data_interval_start",
                "next_dagrun_data_interval_end",
            ]
        )
    audit(
        tenant=tenant,
        actor=actor,
        action=AuditAction.DAG_PAUSED if is_paused else AuditAction.DAG_UNPAUSED,
        obj=locked,
        before={"is_paused": not is_paused},
        after={"is_paused": is_paused},
        request=request,
    )
    events.publish_on_commit(published)
    return locked


def _unschedule_dag(dag: Dag) -> list[dict]:
    """Task instances of the DAG's runs that the scheduler chose but did not queue wait again (none); the
    evaluation after unpausing chooses them again."""
    rows = list(
        TaskInstance.objects.filter(dag_run__dag=dag, state=S.SCHEDULED)
        .select_related("dag_run")
        .select_for_update(of=("self",))
    )
    _transition_many([ti.pk for ti in rows], S.SCHEDULED, S.NONE)
    return [ti_event(ti.dag_run, ti.task_id, ti.map_index, S.NONE, ti.try_number) for ti in rows]


# -- Runs --


def trigger_run(
    *,
    tenant: Tenant,
    actor: Actor,
    dag: Dag,
    conf: dict | None = None,
    logical_date: datetime | None = None,
    run_id: str | None = None,
    note: str = "",
    request: HttpRequest | None = None,
) -> DagRun:
    """Create a manual run of the DAG's active version, as Airflow's trigger: queued, started by the
    scheduler within the DAG's max_active_runs.

    `conf` must be a JSON object valid against the DAG's params (Invalid names the param and the problem).
    Without a logical date the run has none (Airflow 3), except for DAGs written against Airflow 2, whose
    manual runs always had one: now, as Airflow 2's trigger did. A run id or logical date the DAG already has is a
    Conflict, as is a DAG no longer in its bundle's active version. A paused DAG can be triggered; its run
    waits until the DAG is unpaused (Airflow's behaviour).
    """
    _belongs(tenant, dag)
    if not dag.is_active:
        raise Conflict(f"DAG {dag.dag_id!r} is not in the active version of its bundle")
    if run_id is not None and (not run_id or len(run_id) > 250 or not RUN_ID_PATTERN.match(run_id)):
        raise Invalid(f"invalid run_id {run_id!r}: use letters, digits and _.~:+- (at most 250 characters)")
    if logical_date is not None and timezone.is_naive(logical_date):
        raise Invalid("logical_date must include a time zone")
    if conf is not None and not isinstance(conf, Mapping):
        raise Invalid("conf must be a JSON object")
    if logical_date is None and dag.active_version.serialized.get("airflow_version") == 2:
        logical_date = timezone.now()
    return create_dag_run(
        tenant=tenant,
        dag=dag,
        actor=actor,
        run_type=RunType.MANUAL,
        logical_date=logical_date,
        data_interval=None,
        conf=dict(conf or {}),
        run_id=run_id,
        note=note,
        audit_action=AuditAction.RUN_TRIGGERED,
        request=request,
    )


def clear_task_instances(
    *,
    tenant: Tenant,
    actor: Actor,
    run: DagRun,
    task_ids: list[str] | None = None,
    map_indexes: list[int] | None = None,
    downstream: bool = False,
    upstream: bool = False,
    only_failed: bool = False,
    dry_run: bool = False,
    request: HttpRequest | None = None,
) -> list[TaskInstance]:
    """Clear task instances of a run so they run again (Airflow's clear); returns them (with dry_run, the
    ones that would be cleared, unchanged).

    The tasks are `task_ids` (None: every task), their map indexes `map_indexes` (None: all), plus every
    task downstream and/or upstream of them with all their map indexes, plus the setups the cleared work
    tasks need and those setups' teardowns. With `only_failed`, only failed and upstream_failed ones.
    Each ended try is kept as a TaskInstanceHistory row; the task instance goes back to none with its
    retries renewed (max_tries = try_number + retries). A running one is told to stop instead: it becomes
    restarting, its runner kills it and it goes back to none once its try has ended. A mapped task whose
    expand input comes from a cleared task is collapsed to its unexpanded placeholder, so it expands again
    over the new values. A finished run goes back to queued; a queued or running run keeps its state.
    """
    _belongs(tenant, run)
    return _clear(
        actor=actor,
        run=run,
        task_ids=task_ids,
        map_indexes=map_indexes,
        downstream=downstream,
        upstream=upstream,
        only_failed=only_failed,
        dry_run=dry_run,
        request=request,
        action=AuditAction.TASK_CLEARED,
    )


def clear_run(
    *,
    tenant: Tenant,
    actor: Actor,
    run: DagRun,
    only_failed: bool = False,
    dry_run: bool = False,
    request: HttpRequest | None = None,
) -> list[TaskInstance]:
    """Clear a whole run (every task instance, or only the failed ones): clear_task_instances for all its
    tasks, audited as run.cleared."""
    _belongs(tenant, run)
    return _clear(
        actor=actor,
        run=run,
        task_ids=None,
        map_indexes=None,
        downstream=False,
        upstream=False,
        only_failed=only_failed,
        dry_run=dry_run,
        request=request,
        action=AuditAction.RUN_CLEARED,
    )


def _clear(
    *,
    actor: Actor,
    run: DagRun,
    task_ids: list[str] | None,
    map_indexes: list[int] | None,
    downstream: bool,
    upstream: bool,
    only_failed: bool,
    dry_run: bool,
    request: HttpRequest | None,
    action: AuditAction,
) -> list[TaskInstance]:
    spec = get_dag_spec(run.dag_version)
    named = set(spec.tasks) if task_ids is None else set(task_ids)
    unknown = sorted(named - set(spec.tasks))
    if unknown:
        raise Invalid(f"DAG {spec.dag_id!r} has no task {unknown[0]!r} in the version this run uses")
    relatives = _clear_relatives(spec, named, downstream=downstream, upstream=upstream) - named
    with transaction.atomic():
        locked = _lock_run(run.pk)
        match = Q(task_id__in=relatives)
        if map_indexes is None:
            match |= Q(task_id__in=named)
        else:
            match |= Q(task_id__in=named, map_index__in=list(map_indexes))
        tis = TaskInstance.objects.filter(match, dag_run=locked).exclude(state=S.REMOVED)
        if only_failed:
            tis = tis.filter(state__in=[S.FAILED, S.UPSTREAM_FAILED])
        chosen = list(tis.select_for_update(of=("self",)).order_by("task_id", "map_index"))
        if dry_run:
            return chosen
        published = _reset(locked, spec, chosen, now=timezone.now())
        audit(
            tenant=locked.tenant,
            actor=actor,
            action=action,
            obj=locked,
            detail={
                "dag_id": locked.dag.dag_id,
                "run_id": locked.run_id,
                "task_instances": _labels(chosen),
                "count": len(chosen),
                "downstream": downstream,
                "upstream": upstream,
                "only_failed": only_failed,
            },
            request=request,
        )
        events.publish_on_commit(published)
        for name in ("state", "start_date", "end_date", "queued_at", "failure_reason"):
            setattr(run, name, getattr(locked, name))
    return list(TaskInstance.objects.filter(pk__in=[ti.pk for ti in chosen]).order_by("task_id", "map_index"))


def _clear_relatives(spec: DagSpec, task_ids: set[str], *, downstream: bool, upstream: bool) -> set[str]:
    """The tasks a clear of `task_ids` touches: themselves, their downstream/upstream tasks when asked, and
    (Airflow) the setups each cleared work task needs together with those setups' teardowns."""
    tasks = set(task_ids)
    for task_id in task_ids:
        if downstream:
            tasks |= spec.relatives(task_id, upstream=False)
        if upstream:
            tasks |= spec.relatives(task_id, upstream=True)
    for task_id in list(tasks):
        for setup in spec.relevant_setups.get(task_id, ()):
            tasks.add(setup)
            tasks |= {d for d in spec.tasks[setup].downstream if spec.tasks[d].is_teardown}
    return tasks


def _reset(run: DagRun, spec: DagSpec, tis: list[TaskInstance], *, now: datetime) -> list[dict]:
    """Clear `tis` of the locked `run` (see clear_task_instances) and return the events to publish."""
    if not tis:
        return []
    cleared_tasks = {ti.task_id for ti in tis}
    collapse = _tasks_to_collapse(run, spec, tis, cleared_tasks)
    _record_tries([ti for ti in tis if _try_ended(ti)], now)
    published: list[dict] = []
    by_state: dict[tuple[str, int], list[TaskInstance]] = defaultdict(list)
    for ti in tis:
        task = spec.tasks.get(ti.task_id)
        retries = task.retries if task is not None else 0
        by_state[(ti.state, ti.try_number + retries)].append(ti)
    for (old, max_tries), group in by_state.items():
        pks = [ti.pk for ti in group]
        if old == S.RUNNING:
            # Airflow: a running try is told to stop; it is cleared once it has ended (finish_task_instance).
            _transition_many(pks, S.RUNNING, S.RESTARTING, max_tries=max_tries)
            new = S.RESTARTING
        elif old in (S.NONE, S.RESTARTING):
            continue
        else:
            _transition_many(pks, old, S.NONE, max_tries=max_tries, **_CLEARED_FIELDS)
            new = S.NONE
        published += [ti_event(run, ti.task_id, ti.map_index, new, ti.try_number) for ti in group]
    for task_id in sorted(collapse):
        _collapse_expansion(run, task_id)
    if run.state in RUN_FINISHED and transition_run(
        run, DagRunState.QUEUED, queued_at=now, start_date=None, end_date=None, failure_reason=""
    ):
        published.append(run_event(run))
    return published


def _try_ended(ti: TaskInstance) -> bool:
    """Whether clearing `ti` ends a try that started (queued tries never ran; running ones end later)."""
    return ti.try_number > 0 and ti.state not in (S.NONE, S.QUEUED, S.RUNNING, S.RESTARTING)


def _record_tries(tis: list[TaskInstance], now: datetime, state: str | None = None) -> None:
    """A TaskInstanceHistory row for each try that ended (kept when it already has one, as after a retry)."""
    TaskInstanceHistory.objects.bulk_create(
        [
            TaskInstanceHistory(
                tenant_id=ti.tenant_id,
                task_instance_id=ti.pk,
                try_number=ti.try_number,
                state=state or ti.state,
                start_date=ti.start_date,
                end_date=ti.end_date or now,
                duration=ti.duration,
                hostname=ti.hostname,
                error=ti.error,
            )
            for ti in tis
        ],
        ignore_conflicts=True,
    )


def _tasks_to_collapse(run: DagRun, spec: DagSpec, tis: list[TaskInstance], cleared: set[str]) -> set[str]:
    """Mapped tasks to expand again: every map index is cleared, none is running, and a task their expand
    input comes from is cleared too (its new value may have another length). A mapped task cleared alone
    keeps its map indexes, as its input is unchanged."""
    candidates = {
        ti.task_id
        for ti in tis
        if ti.task_id in spec.tasks
        and spec.tasks[ti.task_id].needs_expansion
        and spec.expansion_dependencies(ti.task_id) & cleared
    }
    if not candidates:
        return set()
    chosen = {ti.pk for ti in tis}
    rows = TaskInstance.objects.filter(dag_run=run, task_id__in=candidates).values_list(
        "task_id", "pk", "state"
    )
    blocked = {t for t, pk, state in rows if pk not in chosen or state in (S.RUNNING, S.RESTARTING)}
    return candidates - blocked


def _collapse_expansion(run: DagRun, task_id: str) -> None:
    """Fold a cleared mapped task back into its placeholder (map index -1, none) so the scheduler expands
    it again; the rows of its other map indexes and its XComs go (their tries' history goes with them)."""
    rows = TaskInstance.objects.filter(dag_run=run, task_id=task_id).order_by("map_index")
    keep = rows.first()
    if keep is None:
        return
    rows.exclude(pk=keep.pk).delete()
    XCom.objects.filter(dag_run=run, task_id=task_id).delete()
    TaskInstance.objects.filter(pk=keep.pk).update(map_index=NO_MAP_INDEX, map_index_label="")


@transaction.atomic
def _end_restarted_try(
    ti: TaskInstance, outcome_state: str, now: datetime, common: Mapping[str, Any]
) -> bool:
    """A try cleared while it ran (restarting) has ended: it goes to the history (with how it ended) and the
    task instance waits to run again (none), its retries renewed by the clear."""
    row = (
        TaskInstance.objects.filter(pk=ti.pk, try_number=ti.try_number, state=S.RESTARTING)
        .values("start_date", "hostname")
        .first()
    )
    if row is None:
        return False
    ti.start_date, ti.hostname = row["start_date"], row["hostname"]
    ti.end_date, ti.duration = now, common.get("duration")
    ti.error = str(common.get("error") or "") or "cleared while running"
    ended = outcome_state if outcome_state in MARKABLE else S.FAILED
    _record_tries([ti], now, state=ended)
    ti.state = S.RESTARTING
    return transition(ti, S.NONE, **_CLEARED_FIELDS)


def set_task_instance_state(
    *,
    tenant: Tenant,
    actor: Actor,
    ti: TaskInstance,
    state: str,
    downstream: bool = False,
    upstream: bool = False,
    request: HttpRequest | None = None,
) -> list[TaskInstance]:
    """Mark a task instance (and with `downstream`/`upstream`, every instance of the tasks downstream /
    upstream of it) success, failed or skipped, as Airflow's "mark"; returns the task instances changed.

    Instances already in that state, removed ones and ones being restarted are left alone. A running one is
    stopped by its runner once it sees the change. Then, as Airflow does, the failed and upstream_failed
    instances downstream of the task (other than those just marked) are cleared so the run can resume; a
    finished run with anything cleared goes back to queued.
    """
    _belongs(tenant, ti)
    if state not in MARKABLE:
        raise Invalid(f"a task instance can be marked success, failed or skipped, not {state!r}")
    now = timezone.now()
    with transaction.atomic():
        run = _lock_run(ti.dag_run_id)
        spec = get_dag_spec(run.dag_version)
        tasks: set[str] = set()
        if ti.task_id in spec.tasks:
            if downstream:
                tasks |= spec.relatives(ti.task_id, upstream=False)
            if upstream:
                tasks |= spec.relatives(ti.task_id, upstream=True)
        targets = list(
            TaskInstance.objects.filter(Q(pk=ti.pk) | Q(task_id__in=tasks), dag_run=run)
            .exclude(state__in=[state, S.REMOVED, S.RESTARTING])
            .select_for_update(of=("self",))
            .order_by("task_id", "map_index")
        )
        finished, computed = _fields_for(state, now)
        fields = {
            **finished,
            "next_retry_at": None,
            "trigger": None,
            "trigger_timeout_at": None,
            "next_method": "",
            "next_kwargs": None,
        }
        by_state: dict[str, list[TaskInstance]] = defaultdict(list)
        for target in targets:
            by_state[target.state].append(target)
        for old, group in by_state.items():
            _transition_many([t.pk for t in group], old, state, computed=computed, **fields)
        published = [ti_event(run, t.task_id, t.map_index, state, t.try_number) for t in targets]
        marked = {t.pk for t in targets}
        resumed = list(
            TaskInstance.objects.filter(
                dag_run=run,
                task_id__in=spec.relatives(ti.task_id, upstream=False) if ti.task_id in spec.tasks else [],
                state__in=[S.FAILED, S.UPSTREAM_FAILED],
            )
            .exclude(pk__in=marked)
            .select_for_update(of=("self",))
        )
        published += _reset(run, spec, resumed, now=now)
        audit(
            tenant=tenant,
            actor=actor,
            action=AuditAction.TASK_MARKED,
            obj=ti,
            detail={
                "dag_id": run.dag.dag_id,
                "run_id": run.run_id,
                "state": state,
                "task_instances": _labels(targets),
                "downstream": downstream,
                "upstream": upstream,
                "cleared": _labels(resumed),
            },
            request=request,
        )
        events.publish_on_commit(published)
    return list(TaskInstance.objects.filter(pk__in=marked).order_by("task_id", "map_index"))


def set_run_state(
    *, tenant: Tenant, actor: Actor, run: DagRun, state: str, request: HttpRequest | None = None
) -> DagRun:
    """Mark a run queued, success or failed, as Airflow's "mark run as"; returns the run.

    queued: the run waits for the scheduler again (its task instances keep their states). success: every
    task instance except teardowns becomes success; when teardowns have not finished the run stays active
    until they ran (the scheduler then finishes it), else it succeeds now. failed: running task instances
    (running, deferred, up_for_reschedule, restarting) fail, the other unfinished ones are skipped (teardowns
    that are already running may finish) and the run fails now. Running tries are stopped by their runners.
    Marking a run with the state it has changes nothing.
    """
    _belongs(tenant, run)
    if state not in (DagRunState.QUEUED, DagRunState.SUCCESS, DagRunState.FAILED):
        raise Invalid(f"a run can be marked queued, success or failed, not {state!r}")
    now = timezone.now()
    with transaction.atomic():
        locked = _lock_run(run.pk)
        before = locked.state
        if before == state:
            return locked
        spec = get_dag_spec(locked.dag_version)
        tis = list(TaskInstance.objects.filter(dag_run=locked).select_for_update(of=("self",)))
        teardown = {t for t, task in spec.tasks.items() if task.is_teardown}
        published: list[dict] = []
        finish = True
        if state == DagRunState.SUCCESS:
            marks = [
                ti for ti in tis if ti.task_id not in teardown and ti.state not in (S.SUCCESS, S.REMOVED)
            ]
            published += _mark(locked, [ti for ti in marks if ti.state != S.RESTARTING], S.SUCCESS, now)
            finish = not any(ti.task_id in teardown and ti.state not in FINISHED for ti in tis)
        elif state == DagRunState.FAILED:
            unfinished = [ti for ti in tis if ti.state not in FINISHED]
            running = [ti for ti in unfinished if ti.state in _RUNNING_STATES and ti.task_id not in teardown]
            # Teardowns already running may finish their cleanup; everything else not started is skipped.
            pending = [ti for ti in unfinished if ti.state not in _RUNNING_STATES]
            published += _mark(locked, running, S.FAILED, now)
            published += _mark(locked, pending, S.SKIPPED, now)
        if not finish:
            if locked.state in RUN_FINISHED and transition_run(
                locked, DagRunState.QUEUED, queued_at=now, end_date=None, failure_reason=""
            ):
                published.append(run_event(locked))
        elif state == DagRunState.QUEUED:
            if transition_run(locked, DagRunState.QUEUED, queued_at=now, end_date=None, failure_reason=""):
                published.append(run_event(locked))
        else:
            reason = "" if state == DagRunState.SUCCESS else f"marked failed by {actor.label or actor.kind}"
            if transition_run(
                locked,
                DagRunState(state),
                start_date=locked.start_date or now,
                end_date=now,
                failure_reason=reason,
            ):
                published.append(run_event(locked))
        audit(
            tenant=tenant,
            actor=actor,
            action=AuditAction.RUN_MARKED,
            obj=locked,
            before={"state": before},
            after={"state": str(locked.state), "requested": str(state)},
            detail={"dag_id": locked.dag.dag_id, "run_id": locked.run_id},
            request=request,
        )
        events.publish_on_commit(published)
    for name in ("state", "start_date", "end_date", "queued_at", "failure_reason"):
        setattr(run, name, getattr(locked, name))
    return locked


def _mark(run: DagRun, tis: list[TaskInstance], state: str, now: datetime) -> list[dict]:
    """Move `tis` (read under lock) to the finished `state`, grouped by the state each had; returns events."""
    by_state: dict[str, list[TaskInstance]] = defaultdict(list)
    for ti in tis:
        if state in ALLOWED[TIState(ti.state)]:
            by_state[ti.state].append(ti)
    finished, computed = _fields_for(state, now)
    fields = {**finished, "next_retry_at": None, "trigger": None, "next_method": ""}
    published = []
    for old, group in by_state.items():
        _transition_many([ti.pk for ti in group], old, state, computed=computed, **fields)
        published += [ti_event(run, ti.task_id, ti.map_index, state, ti.try_number) for ti in group]
    return published


@transaction.atomic
def delete_run(*, tenant: Tenant, actor: Actor, run: DagRun, request: HttpRequest | None = None) -> None:
    """Delete a run with its task instances, their history and XComs (Airflow's delete). Tries still running
    are stopped by their runners, which find their task instance gone."""
    _belongs(tenant, run)
    locked = _lock_run(run.pk)
    audit(
        tenant=tenant,
        actor=actor,
        action=AuditAction.RUN_DELETED,
        obj=locked,
        before={
            "dag_id": locked.dag.dag_id,
            "run_id": locked.run_id,
            "state": str(locked.state),
            "run_type": str(locked.run_type),
            "logical_date": locked.logical_date.isoformat() if locked.logical_date else None,
        },
        request=request,
    )
    event = {**run_event(locked), "state": "deleted"}
    locked.delete()
    events.publish_on_commit([event])


# -- Backfills --


def create_backfill(
    *,
    tenant: Tenant,
    actor: Actor,
    dag: Dag,
    start: datetime,
    end: datetime,
    reverse: bool = False,
    max_active_runs: int | None = None,
    reprocess: str = Backfill.Reprocess.NONE,
    conf: dict | None = None,
    request: HttpRequest | None = None,
) -> Backfill:
    """Create a backfill of the DAG between `start` and `end` (logical dates, inclusive), as Airflow 3's.

    The runs are the DAG's schedule's complete data intervals in the range (latest first with `reverse`);
    the scheduler creates them over time (create_backfill_runs), at most `max_active_runs` (default 10)
    queued or running at once, independently of the DAG's own max_active_runs. A date that already has a
    run is skipped while that run is queued or running; otherwise `reprocess` decides: "none" skips it,
    "failed" runs it again if it failed, "completed" runs it again if it finished (the existing run is
    cleared and becomes the backfill's). Invalid: no time-based schedule, a range in the future or
    reversed, nothing to run, conf not valid against the params, depends_on_past tasks with `reverse` or
    with reprocess "none". Conflict: the DAG already has a backfill that is not completed, or no version.
    """
    _belongs(tenant, dag)
    if reprocess not in Backfill.Reprocess.values:
        raise Invalid(f"reprocess must be one of {', '.join(Backfill.Reprocess.values)}, not {reprocess!r}")
    if timezone.is_naive(start) or timezone.is_naive(end):
        raise Invalid("the backfill's start and end must include a time zone")
    if start > end:
        raise Invalid(f"the start ({start.isoformat()}) must not be after the end ({end.isoformat()})")
    now = timezone.now()
    if start >= now and end >= now:
        raise Invalid("a backfill cannot run future dates")
    max_active_runs = DEFAULT_BACKFILL_MAX_ACTIVE_RUNS if max_active_runs is None else max_active_runs
    if max_active_runs < 1:
        raise Invalid("max_active_runs must be at least 1")
    with transaction.atomic():
        locked = Dag.objects.select_for_update(of=("self",)).select_related("active_version").get(pk=dag.pk)
        version = locked.active_version
        if version is None or not locked.is_active:
            raise Conflict(f"DAG {locked.dag_id!r} has no active version to backfill")
        validate_conf(version, conf)
        spec = get_dag_spec(version)
        if any(task.depends_on_past for task in spec.tasks.values()):
            if reverse:
                raise Invalid(
                    "a backfill cannot run in reverse when the DAG has tasks with depends_on_past=True"
                )
            if reprocess == Backfill.Reprocess.NONE:
                raise Invalid(
                    "the DAG has tasks with depends_on_past=True: choose reprocess 'failed' or 'completed'"
                )
        if Backfill.objects.filter(dag=locked, completed_at__isnull=True).exists():
            raise Conflict(f"DAG {locked.dag_id!r} already has a backfill running: there can be only one")
        planned = plan_backfill(version, start, end, reverse=reverse, now=now)
        if not planned:
            raise Invalid(
                f"no complete data interval of DAG {locked.dag_id!r} has its logical date between "
                f"{start.isoformat()} and {end.isoformat()}"
            )
        backfill = Backfill.objects.create(
            tenant=tenant,
            dag=locked,
            from_date=start,
            to_date=end,
            reverse=reverse,
            max_active_runs=max_active_runs,
            reprocess_behavior=reprocess,
            dag_run_conf=dict(conf or {}),
            planned=planned,
            created_by_id=actor.user_id if actor.kind in ("user", "token") else None,
        )
        audit(
            tenant=tenant,
            actor=actor,
            action=AuditAction.BACKFILL_CREATED,
            obj=backfill,
            after={
                "dag_id": locked.dag_id,
                "from_date": start.isoformat(),
                "to_date": end.isoformat(),
                "reverse": reverse,
                "max_active_runs": max_active_runs,
                "reprocess_behavior": reprocess,
                "dag_run_conf": backfill.dag_run_conf,
                "runs_planned": len(planned),
            },
            request=request,
        )
        events.publish_on_commit([_dag_event(locked, "backfill")])
    return backfill


def plan_backfill(
    version: DagVersion, start: datetime, end: datetime, *, reverse: bool = False, now: datetime | None = None
) -> list[dict[str, str]]:
    """The data intervals a backfill of this DAG version between `start` and `end` considers, in the order
    it runs them: the schedule's intervals whose logical date is in the range and which ended before `now`
    ([{"logical_date", "start", "end"}], ISO 8601). Invalid for a schedule that is not time-based."""
    from tradewind.sdk.timetables import TimeRestriction, timetable_from_serialized

    now = now or timezone.now()
    schedule = version.serialized.get("schedule") or {"type": "null"}
    try:
        timetable = timetable_from_serialized(schedule)
    except (KeyError, ValueError):
        raise Invalid(f"DAG {version.dag.dag_id!r} has a schedule the scheduler cannot compute") from None
    if not timetable.periodic:
        raise Invalid(f"DAG {version.dag.dag_id!r} has no time-based schedule, so it cannot be backfilled")
    restriction = TimeRestriction(earliest=start, latest=end, catchup=True)
    planned: list[dict[str, str]] = []
    last = None
    while True:
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None or info.data_interval is None or info.logical_date > end:
            break
        if info.data_interval.end >= now or (last is not None and info.data_interval.end <= last.end):
            break
        if len(planned) >= MAX_BACKFILL_RUNS:
            raise Invalid(f"the range holds more than {MAX_BACKFILL_RUNS} runs: backfill it in parts")
        planned.append(
            {
                "logical_date": info.logical_date.isoformat(),
                "start": info.data_interval.start.isoformat(),
                "end": info.data_interval.end.isoformat(),
            }
        )
        last = info.data_interval
    return planned[::-1] if reverse else planned


@transaction.atomic
def set_backfill_paused(
    *, tenant: Tenant, actor: Actor, backfill: Backfill, is_paused: bool, request: HttpRequest | None = None
) -> Backfill:
    """Pause a backfill (no new runs; the ones it created go on) or unpause it; Conflict once completed."""
    _belongs(tenant, backfill)
    locked = Backfill.objects.select_for_update(of=("self",)).select_related("dag").get(pk=backfill.pk)
    if locked.completed_at is not None:
        raise Conflict("the backfill is already completed")
    if locked.is_paused != is_paused:
        locked.is_paused = is_paused
        locked.save(update_fields=["is_paused", "updated_at"])
        audit(
            tenant=tenant,
            actor=actor,
            action=AuditAction.BACKFILL_PAUSED if is_paused else AuditAction.BACKFILL_UNPAUSED,
            obj=locked,
            before={"is_paused": not is_paused},
            after={"is_paused": is_paused},
            detail={"dag_id": locked.dag.dag_id},
            request=request,
        )
        _wake_on_commit(tenant.pk)
    return locked


@transaction.atomic
def cancel_backfill(
    *, tenant: Tenant, actor: Actor, backfill: Backfill, request: HttpRequest | None = None
) -> Backfill:
    """Cancel a backfill as Airflow does: it is paused and completed now, its queued runs fail, its running
    runs go on. Conflict once completed."""
    _belongs(tenant, backfill)
    locked = Backfill.objects.select_for_update(of=("self",)).select_related("dag").get(pk=backfill.pk)
    if locked.completed_at is not None:
        raise Conflict("the backfill is already completed")
    now = timezone.now()
    published = []
    failed = []
    for run in DagRun.objects.filter(backfill=locked, state=DagRunState.QUEUED).select_related("dag"):
        if transition_run(
            run,
            DagRunState.FAILED,
            end_date=now,
            failure_reason=f"backfill {locked.pk} was cancelled before the run started",
        ):
            failed.append(run.run_id)
            published.append(run_event(run))
    locked.is_paused = True
    locked.completed_at = now
    locked.save(update_fields=["is_paused", "completed_at", "updated_at"])
    audit(
        tenant=tenant,
        actor=actor,
        action=AuditAction.BACKFILL_CANCELLED,
        obj=locked,
        detail={"dag_id": locked.dag.dag_id, "failed_runs": failed, "not_started": _remaining(locked)},
        request=request,
    )
    events.publish_on_commit(published)
    return locked


def _remaining(backfill: Backfill) -> int:
    return max(len(backfill.planned) - backfill.next_index, 0)


_OPEN_BACKFILLS = queries.PreparedRead(  # every scheduling pass reads it
    lambda tenant_id: (
        Backfill.objects.for_tenant(tenant_id).filter(completed_at__isnull=True).values_list("pk")
    )
)


def create_backfill_runs(tenant: Tenant, now: datetime | None = None) -> int:
    """The scheduler's part of backfills: for each of the tenant's backfills that is not completed, create
    (or reprocess) its next runs while fewer than its max_active_runs are queued or running, and complete
    it once every date is handled and its runs have finished. Nothing new for a paused backfill or a
    paused DAG. Returns how many runs were created or reprocessed. Safe with several schedulers: each
    backfill is handled under a row lock that others skip."""
    now = now or timezone.now()
    handled = 0
    for (backfill_id,) in _OPEN_BACKFILLS.all(tenant.pk):
        with transaction.atomic():
            backfill = (
                Backfill.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("dag", "tenant")
                .filter(pk=backfill_id, completed_at__isnull=True)
                .first()
            )
            if backfill is not None:
                handled += _advance_backfill(backfill, now)
    return handled


def _advance_backfill(backfill: Backfill, now: datetime) -> int:
    from tradewind.accounts.actors import Actor

    actor = Actor.system("backfill")
    dag = backfill.dag
    active = DagRun.objects.filter(
        backfill=backfill, state__in=[DagRunState.QUEUED, DagRunState.RUNNING]
    ).count()
    can_create = not backfill.is_paused and not dag.is_paused and dag.is_active and dag.active_version_id
    handled = 0
    while can_create and active < backfill.max_active_runs and backfill.next_index < len(backfill.planned):
        entry = backfill.planned[backfill.next_index]
        backfill.next_index += 1
        reason = _backfill_date(backfill, entry, actor)
        if reason:
            backfill.skipped = [*backfill.skipped, {"logical_date": entry["logical_date"], "reason": reason}]
            continue
        active += 1
        handled += 1
    fields = ["next_index", "skipped", "updated_at"]
    if backfill.next_index >= len(backfill.planned) and active == 0:
        backfill.completed_at = now
        fields.append("completed_at")
        audit(
            tenant=backfill.tenant,
            actor=actor,
            action=AuditAction.BACKFILL_COMPLETED,
            obj=backfill,
            detail={"dag_id": dag.dag_id, "runs": backfill.runs.count(), "skipped": len(backfill.skipped)},
        )
    backfill.save(update_fields=fields)
    return handled


def _backfill_date(backfill: Backfill, entry: Mapping[str, str], actor: Actor) -> str:
    """Create or reprocess the run of one planned date; "" when done, else why the date is skipped."""
    logical_date = datetime.fromisoformat(entry["logical_date"])
    existing = DagRun.objects.filter(dag=backfill.dag, logical_date=logical_date).select_related(
        "dag", "dag_version", "tenant"
    )
    run = existing.select_for_update(skip_locked=True, of=("self",)).first()
    if run is None and existing.exists():
        return "in flight"  # another transaction holds that run
    if run is not None:
        reason = backfill_skip_reason(run.state, backfill.reprocess_behavior)
        if reason:
            return reason
        _clear(
            actor=actor,
            run=run,
            task_ids=None,
            map_indexes=None,
            downstream=False,
            upstream=False,
            only_failed=False,
            dry_run=False,
            request=None,
            action=AuditAction.RUN_CLEARED,
        )
        run.run_type, run.backfill, run.conf = RunType.BACKFILL, backfill, dict(backfill.dag_run_conf)
        run.save(update_fields=["run_type", "backfill", "conf"])
        return ""
    try:
        with transaction.atomic():
            run = create_dag_run(
                tenant=backfill.tenant,
                dag=backfill.dag,
                actor=actor,
                run_type=RunType.BACKFILL,
                logical_date=logical_date,
                data_interval=(datetime.fromisoformat(entry["start"]), datetime.fromisoformat(entry["end"])),
                conf=backfill.dag_run_conf,
                backfill=backfill,
            )
    except (Conflict, IntegrityError):  # created meanwhile by the scheduler or a trigger
        return "in flight"
    if backfill.created_by_id is not None:
        DagRun.objects.filter(pk=run.pk).update(triggered_by_id=backfill.created_by_id)
    return ""


def backfill_skip_reason(state: str, reprocess: str) -> str:
    """Airflow's rule for a backfill date whose run is in `state`: "" to reprocess it, else why it is
    skipped ("in flight" while queued or running, "already exists" when `reprocess` does not cover it)."""
    if state not in RUN_FINISHED:
        return "in flight"
    if reprocess == Backfill.Reprocess.NONE:
        return "already exists"
    if reprocess == Backfill.Reprocess.FAILED and state != DagRunState.FAILED:
        return "already exists"
    return ""


# -- Pools --


def ensure_default_pool(tenant: Tenant) -> Pool:
    """The tenant's default_pool (128 slots), created if it does not exist yet: every tenant has one."""
    pool, _ = Pool.objects.get_or_create(
        tenant=tenant, name=DEFAULT_POOL, defaults={"slots": 128, "description": "Default pool"}
    )
    return pool


@transaction.atomic
def set_pool(
    *,
    tenant: Tenant,
    actor: Actor,
    name: str,
    slots: int,
    description: str = "",
    include_deferred: bool = False,
    request: HttpRequest | None = None,
) -> Pool:
    """Create or update the tenant's pool `name` (Airflow's pools set): `slots` task slots (-1: unlimited),
    deferred tasks counted when `include_deferred`. Invalid for an empty or too long name or slots < -1."""
    name = (name or "").strip()
    if not name or len(name) > 250:
        raise Invalid("a pool needs a name of 1 to 250 characters")
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < -1:
        raise Invalid("slots must be a whole number, -1 for unlimited")
    pool = Pool.objects.for_tenant(tenant).select_for_update().filter(name=name).first()
    before = None
    if pool is None:
        pool = Pool(tenant=tenant, name=name)
    else:
        before = {
            "slots": pool.slots,
            "description": pool.description,
            "include_deferred": pool.include_deferred,
        }
    pool.slots, pool.description, pool.include_deferred = slots, description or "", bool(include_deferred)
    pool.save()
    audit(
        tenant=tenant,
        actor=actor,
        action=AuditAction.POOL_CHANGED,
        obj=pool,
        before=before,
        after={
            "name": name,
            "slots": slots,
            "description": pool.description,
            "include_deferred": pool.include_deferred,
        },
        request=request,
    )
    _wake_on_commit(tenant.pk)  # more slots may let waiting tasks run
    return pool


@transaction.atomic
def delete_pool(*, tenant: Tenant, actor: Actor, pool: Pool, request: HttpRequest | None = None) -> None:
    """Delete one of the tenant's pools; the default_pool cannot be deleted (Invalid). Task instances that
    still name the pool wait until a pool of that name exists again."""
    _belongs(tenant, pool)
    if pool.name == DEFAULT_POOL:
        raise Invalid("the default_pool cannot be deleted")
    audit(
        tenant=tenant,
        actor=actor,
        action=AuditAction.POOL_DELETED,
        obj=pool,
        before={"name": pool.name, "slots": pool.slots, "description": pool.description},
        request=request,
    )
    Pool.objects.filter(pk=pool.pk).delete()
