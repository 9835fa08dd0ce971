"""Run-level services: create runs, evaluate them, queue, start and finish task instances, resume deferrals.

Every decision about what a run does next comes from `scheduler.evaluation` (pure logic); these functions
load its input in a few queries, write its decisions in bulk through the state machine (each bulk update
fenced on the state it read), record audit entries and publish events once the transaction commits.
`dags test` and the production scheduler call exactly these.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from scheduler import evaluation, events, queries
from scheduler.evaluation import DagSpec, Decisions, PastRun, TISnapshot
from scheduler.models import (
    NO_MAP_INDEX,
    Asset,
    AssetDagRunQueue,
    AssetEvent,
    Dag,
    DagRun,
    DagVersion,
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
    transition_run,
)
from tradewind.audit.actions import AuditAction
from tradewind.audit.services import record as audit
from tradewind.errors import Conflict, Invalid

if TYPE_CHECKING:
    from tenants.models import Tenant
    from tradewind.accounts.actors import Actor

logger = logging.getLogger(__name__)

S = TIState
_SPEC_CACHE_SIZE = 256
_spec_cache: OrderedDict[tuple[int, str], DagSpec] = OrderedDict()


# --- DAG versions and params ------------------------------------------------------------------------------


def get_dag_spec(version: DagVersion) -> DagSpec:
    """The engine's reading of a DAG version (cached per version; versions never change)."""
    key = (version.pk, version.hash)
    spec = _spec_cache.get(key)
    if spec is None:
        spec = DagSpec.from_serialized(version.serialized)
        _spec_cache[key] = spec
        if len(_spec_cache) > _SPEC_CACHE_SIZE:
            _spec_cache.popitem(last=False)
    else:
        _spec_cache.move_to_end(key)
    return spec


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
) -> DagRun:
    """Create a queued run pinned to `dag_version` (default: the DAG's active version) with one task
    instance per task (a mapped task gets its placeholder at map index -1 until it expands).

    `conf` is validated against the DAG's params (Invalid); a run id or logical date the DAG already has
    is a Conflict. Without a data interval, a manual run infers one from the schedule as Airflow does.
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
    )
    spec = get_dag_spec(version)
    TaskInstance.objects.bulk_create(
        [_new_ti(run, spec.tasks[task_id], NO_MAP_INDEX, S.NONE) for task_id in spec.order]
    )
    audit(
        tenant=tenant,
        actor=actor,
        action=AuditAction.RUN_CREATED,
        obj=run,
        after={"dag_id": dag.dag_id, "run_id": run_id, "run_type": str(run_type), "conf": conf},
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
    """Evaluate `run` once and write the decisions; returns the run's SCHEDULED task instances (ready to
    queue, highest priority first).

    A queued run starts (callers that enforce max_active_runs only pass runs they started). Everything
    `evaluation.evaluate` decides is applied in this one call: trigger rules with skip and upstream_failed
    propagation, mapping expansion, due retries and reschedules, removed tasks, dagrun_timeout, deadlock,
    the run's final state. Concurrent calls for one run are serialised by a lock on the run's row.
    `run` is updated in place (state, dates, failure_reason).
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = (
            DagRun.objects.select_for_update(of=("self",))
            .select_related("dag", "dag_version")
            .filter(pk=run.pk)
            .first()
        )
        if locked is None or locked.state in RUN_FINISHED:
            if locked is not None:
                run.state = locked.state
            return []
        spec = get_dag_spec(locked.dag_version)
        snapshots = [
            TISnapshot(task_id=t, map_index=mi, state=state, try_number=tn, next_retry_at=nra, pk=pk)
            for pk, t, mi, state, tn, nra in TaskInstance.objects.filter(dag_run=locked).values_list(
                "pk", "task_id", "map_index", "state", "try_number", "next_retry_at"
            )
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
        if locked.state != DagRunState.RUNNING:
            return []
        return list(
            TaskInstance.objects.filter(dag_run=locked, state=S.SCHEDULED)
            .select_related("dag_run")
            .order_by("-priority_weight", "pk")
        )


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
    xcoms = XCom.objects.filter(dag_run=run)
    counted = Q()
    loaded = Q()
    for task_id, key in refs:
        if spec.is_mapped_source(task_id):
            counted |= Q(task_id=task_id, key=key)
        else:
            loaded |= Q(task_id=task_id, key=key)
    if counted:
        for t, mi, k in xcoms.filter(counted).values_list("task_id", "map_index", "key"):
            lengths[(t, mi, k)] = None
    if loaded:
        for t, mi, k, value in xcoms.filter(loaded).values_list("task_id", "map_index", "key", "value"):
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
        fields: dict[str, Any] = _fields_for(new, now)
        if new_map_index is not None:
            fields["map_index"] = new_map_index
        moved = _transition_many([c.pk for c in changes], old, new, **fields)
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
    if decisions.run_state is not None and _transition_run_to(
        run, DagRunState(decisions.run_state), now, decisions.failure_reason
    ):
        published.append(run_event(run))
    events.publish_on_commit(published)


def _index(change: evaluation.TIChange) -> int:
    return change.map_index if change.new_map_index is None else change.new_map_index


def _fields_for(state: str, now: datetime) -> dict[str, Any]:
    if state in FINISHED:
        return {"end_date": now, "start_date": Coalesce(F("start_date"), Value(now))}
    if state == S.SCHEDULED:
        return {"next_retry_at": None}
    return {}


def _transition_many(pks: Iterable[int | None], old: str, new: str, **fields: Any) -> int:
    """transition() for many rows read in the same state: legal per the state machine, fenced on `old`;
    returns how many moved (fewer when someone moved some first)."""
    if new != old and new not in ALLOWED[TIState(old)]:
        raise InvalidTransition(old, new)
    ids = [pk for pk in pks if pk is not None]
    if not ids:
        return 0
    return TaskInstance.objects.filter(pk__in=ids, state=old).update(state=new, **fields)


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


def queue_task_instances(tis: list[TaskInstance]) -> list[TaskInstance]:
    """Move scheduled task instances to queued, highest priority first, within each run's DAG
    max_active_tasks (queued + running in the run); returns those moved.

    A new try starts here (try_number + 1), so the executor's message is (ti id, try_number); a task
    instance resuming the same try (after a reschedule or a deferral) keeps its try_number, as in Airflow.
    Rows another caller moved or holds, and rows of runs that are not running, are left out."""
    if not tis:
        return []
    now = timezone.now()
    with transaction.atomic():
        candidates = list(
            TaskInstance.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=[ti.pk for ti in tis], state=S.SCHEDULED, dag_run__state=DagRunState.RUNNING)
            .select_related("dag_run", "dag_run__dag")
            .order_by("-priority_weight", "pk")
        )
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
        new_try = [ti for ti in chosen if ti.try_number == 0 or (ti.pk, ti.try_number) in ended]
        same_try = [ti for ti in chosen if ti not in new_try]
        if new_try:
            _transition_many(
                [ti.pk for ti in new_try],
                S.SCHEDULED,
                S.QUEUED,
                queued_at=now,
                try_number=F("try_number") + 1,
            )
        if same_try:
            _transition_many([ti.pk for ti in same_try], S.SCHEDULED, S.QUEUED, queued_at=now)
        for ti in chosen:
            ti.state, ti.queued_at = S.QUEUED, now
            if ti in new_try:
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


def start_task_instance(
    *, tenant_id: int, ti_id: int, try_number: int, hostname: str, pid: int | None
) -> TaskInstance | None:
    """queued → running for exactly this try (fenced on state and try_number); None when the message is a
    duplicate or late (the task instance is not queued for this try any more)."""
    ti = (
        TaskInstance.objects.for_tenant(tenant_id)
        .select_related("dag_run", "dag_run__dag", "dag_run__dag_version")
        .filter(pk=ti_id, try_number=try_number, state=S.QUEUED)
        .first()
    )
    if ti is None:
        return None
    now = timezone.now()
    fields: dict[str, Any] = {"hostname": hostname[:250], "pid": pid, "heartbeat_at": now, "end_date": None}
    if not ti.next_method:  # resuming after a deferral keeps the try's start
        fields["start_date"] = now
    if ti.first_try_start_date is None:
        fields["first_try_start_date"] = now
    with transaction.atomic():
        if not transition(ti, S.RUNNING, **fields):
            return None
        events.publish_on_commit([ti_event(ti.dag_run, ti.task_id, ti.map_index, ti.state, ti.try_number)])
    return ti


def finish_task_instance(ti: TaskInstance, outcome: dict) -> TaskInstance:
    """Record the outcome of a running try (SDK_SPEC.md "Outcome") and return the task instance.

    success (then the branch's "followed" / short-circuit's "skip_downstream" skips), skipped, failed
    (up_for_retry with Airflow's retry delay unless fail_fast or out of tries; a history row for the try),
    up_for_reschedule until reschedule_date, deferred with its trigger. Rendered fields, the map index
    label and asset events are stored. A task instance that is no longer running this try (a dagrun
    timeout skipped it, a duplicate finish) is left as it is."""
    now = timezone.now()
    state = outcome.get("state")
    with transaction.atomic():
        run = DagRun.objects.select_related("dag", "dag_version").get(pk=ti.dag_run_id)
        task = get_dag_spec(run.dag_version).tasks.get(ti.task_id)
        common: dict[str, Any] = {"end_date": now, "error": str(outcome.get("error") or "")}
        if ti.start_date is not None:
            common["duration"] = (now - ti.start_date).total_seconds()
        if outcome.get("rendered_fields") is not None:
            common["rendered_fields"] = outcome["rendered_fields"]
        if outcome.get("map_index_label"):
            common["map_index_label"] = str(outcome["map_index_label"])[:250]
        done = {"trigger": None, "trigger_timeout_at": None, "next_method": "", "next_kwargs": None}
        if ti.state != S.RUNNING:
            moved = False
        elif state == S.SUCCESS:
            moved = transition(ti, S.SUCCESS, **common, **done)
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
            moved = _fail(run, task, ti, now, common, fail_fast=bool(outcome.get("fail_fast")))
        if moved:
            events.publish_on_commit([ti_event(run, ti.task_id, ti.map_index, ti.state, ti.try_number)])
    return ti


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
    if outcome.get("followed") is None and not outcome.get("skip_downstream"):
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
    for old in (S.NONE, S.SCHEDULED):
        rows = [r for r in targets if r[3] == old]
        if rows:
            _transition_many([r[0] for r in rows], old, S.SKIPPED, **_fields_for(S.SKIPPED, timezone.now()))
            published += [ti_event(run, r[1], r[2], S.SKIPPED, r[4]) for r in rows]
    events.publish_on_commit(published)


def _record_asset_events(run: DagRun, ti: TaskInstance, asset_events: list[dict]) -> None:
    """Store the task's asset events and queue them for the tenant's DAGs scheduled on those assets."""
    if not asset_events:
        return
    consumers: list[tuple[int, set[str]]] | None = None
    for item in asset_events:
        uri = str(item.get("uri") or "")
        if not uri:
            continue
        asset, _ = Asset.objects.get_or_create(
            tenant_id=run.tenant_id,
            uri=uri,
            defaults={
                "name": str(item.get("name") or uri)[:1500],
                "group": str(item.get("group") or "")[:1500],
            },
        )
        AssetEvent.objects.create(
            tenant_id=run.tenant_id,
            asset=asset,
            source_dag_run=run,
            source_task_id=ti.task_id,
            source_map_index=ti.map_index,
            extra=item.get("extra") or {},
        )
        if consumers is None:
            consumers = [
                (pk, set(_uris_in(schedule)))
                for pk, schedule in Dag.objects.for_tenant(run.tenant_id)
                .filter(is_active=True)
                .exclude(schedule=None)
                .values_list("pk", "schedule")
            ]
        AssetDagRunQueue.objects.bulk_create(
            [
                AssetDagRunQueue(tenant_id=run.tenant_id, asset=asset, target_dag_id=pk)
                for pk, uris in consumers
                if uri in uris
            ],
            ignore_conflicts=True,
        )


def _uris_in(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        if isinstance(value.get("uri"), str):
            yield value["uri"]
        for item in value.values():
            yield from _uris_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _uris_in(item)


def resume_deferred(ti: TaskInstance, *, event: dict | None, error: str | None = None) -> None:
    """A deferred task instance's trigger finished: it is scheduled again for the same try, resuming with
    next_method(event=payload); when the trigger failed or timed out, it resumes with Airflow's "__fail__"
    so the task itself fails in the sandbox (TaskDeferralTimeout for the error "Trigger/execution timeout",
    else TaskDeferralError) and its callbacks and retries apply."""
    with transaction.atomic():
        if ti.state != S.DEFERRED:
            return
        if error is None and event is not None:
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
