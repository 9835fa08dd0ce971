"""The scheduling loop of one tenant: create due runs, evaluate active runs, queue what is ready.

One `TenantScheduler` serves one tenant (a scheduler process may hold several). Each pass is a few bulk
queries, critical path first: runs are evaluated and their ready task instances sent to the executor before
anything else is looked at. Between passes the caller sleeps until the next timed event (a run due, a retry
due, a queued message or a heartbeat overdue) or until an event wakes it (a task finished, a run triggered, a
bundle uploaded) — never a fixed sleep on the critical path.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Min, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from scheduler import services
from scheduler.assets import event_keys
from scheduler.models import AssetDagRunQueue, AssetEvent, Dag, DagRun, Pool, TaskInstance
from scheduler.queries import PreparedRead
from scheduler.states import ACTIVE, RUN_FINISHED, DagRunState, RunType, TIState, transition_run
from tenants.models import Tenant
from tradewind.accounts.actors import Actor
from tradewind.errors import Conflict
from workers.executors import Executor, QueuedTask

logger = logging.getLogger(__name__)

_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


@dataclass
class PassResult:
    """What one scheduling pass did, and when the next one is needed at the latest."""

    runs_created: int = 0
    tasks_queued: int = 0
    next_wake: datetime | None = None
    executor_full: bool = False  # ready task instances may have been left for want of executor slots
    backlog: bool = False  # what it queued joined a backlog that keeps the workers busy (see Queued)
    tasks_active: int = 0  # the tenant's tries queued or running when it ended (0: none, or not counted)


# The reads every pass makes before it queues anything, compiled once (see PreparedRead).
_TENANT = PreparedRead(lambda tenant_id: Tenant.objects.filter(pk=tenant_id))
_QUEUED_RUNS = PreparedRead(
    lambda tenant_id: (
        DagRun.objects.for_tenant(tenant_id)
        .filter(state=DagRunState.QUEUED, dag__is_paused=False)
        .select_related("dag")
        .order_by("run_after", "pk")
    )
)
_RUNNING_RUNS = PreparedRead(
    lambda tenant_id: (
        DagRun.objects.for_tenant(tenant_id)
        .filter(state=DagRunState.RUNNING, dag__is_paused=False)
        .order_by("pk")
    )
)
_SLOT_USAGE = PreparedRead(
    lambda tenant_id: (
        TaskInstance.objects.for_tenant(tenant_id)
        .filter(state__in=[*ACTIVE, TIState.DEFERRED])
        .values_list("state", "pool", "dag_run_id")
        .annotate(n=Count("pk"), slots=Sum("pool_slots"))
        .values_list("state", "pool", "dag_run_id", "n", "slots")
    )
)
_POOLS = PreparedRead(lambda tenant_id: Pool.objects.for_tenant(tenant_id))
_RUN_LIMITS = PreparedRead(
    lambda tenant_id: (
        DagRun.objects.for_tenant(tenant_id)
        .filter(state=DagRunState.RUNNING)
        .values_list("pk", "dag__max_active_tasks")
    )
)
# And those it makes after (most passes find nothing due: compiling them cost more than running them).
_DUE_DAGS = PreparedRead(
    lambda tenant_id, now: (
        Dag.objects.for_tenant(tenant_id)
        .filter(
            is_active=True, is_paused=False, active_version__isnull=False, next_dagrun_create_after__lte=now
        )
        .select_related("active_version")
    )
)
_ASSET_QUEUE = PreparedRead(
    lambda tenant_id: AssetDagRunQueue.objects.for_tenant(tenant_id).select_related(
        "asset", "target_dag__active_version"
    )
)
_NEXT_RUN_AT = PreparedRead(
    lambda tenant_id, now: (
        Dag.objects.for_tenant(tenant_id)
        .filter(is_active=True, is_paused=False, next_dagrun_create_after__gt=now)
        .order_by("next_dagrun_create_after")
        .values_list("next_dagrun_create_after")[:1]
    )
)
_WAITING = [TIState.UP_FOR_RETRY, TIState.UP_FOR_RESCHEDULE]
_TI_TIMERS = PreparedRead(  # one row (none without such task instances)
    lambda tenant_id: (
        TaskInstance.objects.for_tenant(tenant_id)
        .filter(state__in=[*_WAITING, TIState.QUEUED, TIState.RUNNING])
        .order_by()
        .values_list("tenant_id")
        .annotate(
            retry=Min("next_retry_at", filter=Q(state__in=_WAITING)),
            queued=Min("queued_at", filter=Q(state=TIState.QUEUED)),
            beat=Min(Coalesce("heartbeat_at", "start_date"), filter=Q(state=TIState.RUNNING)),
        )
        .values_list("retry", "queued", "beat")
    )
)


class TenantScheduler:
    """Schedules one tenant's DAGs onto an executor."""

    def __init__(self, tenant_id: int, executor: Executor) -> None:
        self.tenant_id = tenant_id
        self.executor = executor
        self._recovery_due = _EARLIEST  # when requeue_lost may next find something (lost message, zombie)
        self._has_default_pool = False

    def run_pass(self, now: datetime | None = None) -> PassResult:
        """One scheduling pass; safe to run concurrently with another scheduler (every write is fenced)."""
        now = now or timezone.now()
        tenant = _TENANT.get(self.tenant_id)
        result = PassResult()
        if tenant is None or not tenant.is_active:  # look again later: it may be reactivated
            result.next_wake = now + timedelta(seconds=settings.TRADEWIND_SCHEDULER_MAX_SLEEP)
            return result
        if not self._has_default_pool:
            services.ensure_default_pool(tenant)
            self._has_default_pool = True
        self._advance(tenant, now, result)
        if now >= self._recovery_due:
            requeue_lost(tenant, self.executor, now)
        result.runs_created = (
            create_due_runs(tenant, now)
            + create_asset_triggered_runs(tenant, now)
            + services.create_backfill_runs(tenant, now)
        )
        if result.runs_created:  # start them now rather than on the next pass
            self._advance(tenant, now, result)
        timers = next_timers(tenant, now)
        self._recovery_due = timers.recovery or _LATEST
        result.next_wake = timers.wake
        return result

    def _advance(self, tenant: Tenant, now: datetime, result: PassResult) -> None:
        """Start queued runs, evaluate running ones, queue what is ready (counted in `result`)."""
        start_queued_runs(tenant, now)
        for run in _RUNNING_RUNS.all(tenant.pk):
            services.evaluate_run(run, now=now)
            if run.state in RUN_FINISHED:  # this pass finished it: its callbacks are ours to start
                self.executor.submit_dag_callbacks(tenant.pk, tenant.slug, run.pk)
        queued = queue_ready(tenant, self.executor)
        result.tasks_queued += len(queued.tasks)
        result.executor_full = queued.executor_full
        result.backlog = queued.backlog
        result.tasks_active = queued.active


SCHEDULE_KEYS = ("schedule", "effective_start_date", "start_date", "end_date", "catchup")


def _timed_schedule(serialized: dict):
    """(timetable, restriction) of a DAG version's serialization (only SCHEDULE_KEYS are read)."""
    from tradewind.sdk.timetables import restriction_from_serialized, timetable_from_serialized

    return timetable_from_serialized(serialized["schedule"]), restriction_from_serialized(serialized)


def _next_run_info(dag: Dag, timetable, restriction):
    """Airflow's next_dagrun_info after the DAG's latest automated (scheduled or backfill) run."""
    from tradewind.sdk.timetables import DataInterval

    last = (
        DagRun.objects.filter(dag=dag, run_type__in=[RunType.SCHEDULED, RunType.BACKFILL])
        .exclude(data_interval_end__isnull=True)
        .order_by("-data_interval_end")
        .first()
    )
    last_interval = DataInterval(last.data_interval_start, last.data_interval_end) if last else None
    return timetable.next_dagrun_info(last_automated_data_interval=last_interval, restriction=restriction)


def refresh_next_dagrun(dag: Dag, serialized: dict) -> None:
    """Work out when the DAG's next scheduled run is due, from its active version's serialization (at
    least SCHEDULE_KEYS): after activation, a new version or unpausing."""
    timetable, restriction = _timed_schedule(serialized)
    _set_next_dagrun(dag, _next_run_info(dag, timetable, restriction))


def create_due_runs(tenant: Tenant, now: datetime) -> int:
    """Create the scheduled runs whose time has come (with catchup), up to each DAG's max_active_runs."""
    return sum(_create_due_runs_of(tenant, dag, now) for dag in _DUE_DAGS.all(tenant.pk, now))


def _create_due_runs_of(tenant: Tenant, dag: Dag, now: datetime) -> int:
    timetable, restriction = _timed_schedule(dag.active_version.serialized)
    active_runs = DagRun.objects.filter(dag=dag, state__in=[DagRunState.QUEUED, DagRunState.RUNNING]).count()
    info = _next_run_info(dag, timetable, restriction)
    created = 0
    # A DAG left at max_active_runs stays due: the pass that a run's end wakes looks again.
    while info is not None and info.run_after <= now and active_runs < dag.max_active_runs:
        try:
            services.create_dag_run(
                tenant=tenant,
                dag=dag,
                actor=Actor.system("scheduler"),
                run_type=RunType.SCHEDULED,
                logical_date=info.logical_date,
                data_interval=(info.data_interval.start, info.data_interval.end),
            )
            created += 1
            active_runs += 1
        except (Conflict, IntegrityError):
            # A run already has this logical date (a manual one, or another scheduler's): as Airflow does,
            # the interval is passed over.
            logger.info(
                "a run for this interval exists; passing over it",
                extra={"dag_id": dag.dag_id, "logical_date": info.logical_date},
            )
        info = timetable.next_dagrun_info(
            last_automated_data_interval=info.data_interval, restriction=restriction
        )
    if info is None or info.run_after != dag.next_dagrun_create_after:
        _set_next_dagrun(dag, info)
    return created


def create_asset_triggered_runs(tenant: Tenant, now: datetime) -> int:
    """Create a run for each asset-scheduled DAG whose asset condition is met by the queued updates."""
    from tradewind.sdk.assets import condition_from_serialized

    by_dag: dict[int, list[AssetDagRunQueue]] = {}
    for row in _ASSET_QUEUE.all(tenant.pk):
        by_dag.setdefault(row.target_dag_id, []).append(row)
    created = 0
    for rows in by_dag.values():
        dag = rows[0].target_dag
        if dag.is_paused or not dag.is_active or dag.active_version is None:
            continue
        schedule = dag.active_version.serialized["schedule"]
        if "condition" not in schedule:  # no longer asset-scheduled: the updates are moot
            AssetDagRunQueue.objects.filter(pk__in=[row.pk for row in rows]).delete()
            continue
        keys = event_keys(tenant.pk, [row.asset for row in rows])
        if not condition_from_serialized(schedule["condition"]).evaluate(
            {key: True for row in rows for key in keys[row.asset_id]}
        ):
            continue
        events = AssetEvent.objects.for_tenant(tenant).filter(
            asset_id__in=[row.asset_id for row in rows], timestamp__lte=now
        )
        first = min(row.created_at for row in rows)
        window = events.filter(timestamp__gte=first).aggregate(start=Min("timestamp"))["start"] or first
        with transaction.atomic():
            services.create_dag_run(
                tenant=tenant,
                dag=dag,
                actor=Actor.system("scheduler"),
                run_type=RunType.ASSET_TRIGGERED,
                logical_date=now,
                data_interval=(window, now),
            )
            AssetDagRunQueue.objects.filter(pk__in=[row.pk for row in rows]).delete()
        created += 1
    return created


def _set_next_dagrun(dag: Dag, info: object | None) -> None:
    if info is None:
        Dag.objects.filter(pk=dag.pk).update(
            next_dagrun_create_after=None,
            next_dagrun_data_interval_start=None,
            next_dagrun_data_interval_end=None,
        )
        return
    Dag.objects.filter(pk=dag.pk).update(
        next_dagrun_create_after=info.run_after,
        next_dagrun_data_interval_start=info.data_interval.start,
        next_dagrun_data_interval_end=info.data_interval.end,
    )


def start_queued_runs(tenant: Tenant, now: datetime) -> None:
    """Queued runs start (oldest first) while their DAG and the tenant are under max_active_runs."""
    queued = _QUEUED_RUNS.all(tenant.pk)
    if not queued:
        return
    runs = DagRun.objects.for_tenant(tenant)
    running_per_dag: dict[int, int] = dict(
        runs.filter(state=DagRunState.RUNNING)
        .values_list("dag_id")
        .annotate(n=Count("pk"))
        .values_list("dag_id", "n")
    )
    running_total = sum(running_per_dag.values())
    for run in queued:
        if running_total >= tenant.max_active_runs:
            break
        if running_per_dag.get(run.dag_id, 0) >= run.dag.max_active_runs:
            continue
        if transition_run(run, DagRunState.RUNNING, start_date=now):
            running_total += 1
            running_per_dag[run.dag_id] = running_per_dag.get(run.dag_id, 0) + 1


@dataclass
class Queued:
    """What queue_ready sent, whether the executor's free slots ran out (more may be ready), and whether the
    tenant's queued task instances are a backlog: at least BACKLOG_MIN of them, and twice as many as are
    running, wait for a worker, so queueing more a little later keeps every worker just as busy."""

    tasks: list[QueuedTask]
    executor_full: bool = False
    backlog: bool = False
    active: int = 0  # the tenant's task instances queued or running now (0 when the executor was full)


BACKLOG_MIN = 32


def queue_ready(tenant: Tenant, executor: Executor, limit: int = 1024) -> Queued:
    """Queue scheduled task instances, highest priority first, within their pools, the tenant's
    max_active_tasks quota, their run's max_active_tasks (per run, as in Airflow 3) and the executor's free
    slots; the executor gets them once the transaction commits.

    Only candidates that could be queued now are read: those of pools with a free slot and of runs below
    their limit, a few more than there is room for. Reading every scheduled task instance on every pass
    would cost a busy tenant more than the queueing itself."""
    free = executor.free_slots()
    if free == 0:
        return Queued([], executor_full=_ready(tenant.pk).exists())
    with transaction.atomic():
        usage = _slot_usage(tenant)
        tenant_free = tenant.max_active_tasks - usage.active
        room = tenant_free if free is None else min(free, tenant_free)
        pool_free = _pool_free_slots(tenant, usage)
        run_limits = dict(_RUN_LIMITS.all(tenant.pk))
        open_pools = [name for name, slots in pool_free.items() if slots > 0]
        full_runs = [pk for pk, cap in run_limits.items() if usage.per_run[pk] >= cap]
        if room <= 0 or not open_pools:
            return Queued([], active=usage.active)
        wanted = min(limit, room + CANDIDATE_MARGIN)
        read = _candidates(1 << (wanted - 1).bit_length(), excluding=bool(full_runs))
        candidates = (
            read.all(tenant.pk, open_pools, full_runs) if full_runs else read.all(tenant.pk, open_pools)
        )
        chosen: list[TaskInstance] = []
        executor_full = False
        for ti in candidates:
            if free is not None and len(chosen) >= free:
                executor_full = True
                break
            if len(chosen) >= tenant_free:
                break
            run_has_room = usage.per_run[ti.dag_run_id] < run_limits.get(ti.dag_run_id, 0)
            if pool_free[ti.pool] < ti.pool_slots or not run_has_room:
                continue
            chosen.append(ti)
            pool_free[ti.pool] -= ti.pool_slots
            usage.per_run[ti.dag_run_id] += 1
        queued = services.queue_task_instances(chosen)
        messages = [QueuedTask.of(tenant, ti) for ti in queued]
        if messages:
            transaction.on_commit(lambda: executor.submit(messages))
    waiting = usage.queued + len(messages)
    return Queued(
        messages,
        executor_full,
        backlog=waiting >= max(BACKLOG_MIN, 2 * (usage.active - usage.queued)),
        active=usage.active + len(messages),
    )


# How many candidates queue_ready reads beyond the room it has: some may still not fit (a pool with fewer
# free slots than their pool_slots, a run that reaches its limit on the way).
CANDIDATE_MARGIN = 64


def _ready(tenant_id: int) -> QuerySet[TaskInstance]:
    return TaskInstance.objects.for_tenant(tenant_id).filter(
        state=TIState.SCHEDULED, dag_run__state=DagRunState.RUNNING
    )


@functools.cache
def _candidates(limit: int, *, excluding: bool) -> PreparedRead[TaskInstance]:
    """queue_ready's read of ready task instances in open pools (and, `excluding`, not of full runs), highest
    priority first, locked: prepared per LIMIT, a power of two (a few more rows than needed are read)."""

    def locked(ready: QuerySet[TaskInstance]) -> QuerySet[TaskInstance]:
        return (
            ready.select_for_update(skip_locked=True, of=("self",))
            .only("pk", "dag_run_id", "pool", "pool_slots", "priority_weight")
            .order_by("-priority_weight", "pk")[:limit]
        )

    if excluding:
        return PreparedRead(
            lambda tenant_id, pools, full_runs: locked(
                _ready(tenant_id).filter(pool__in=pools).exclude(dag_run_id__in=full_runs)
            )
        )
    return PreparedRead(lambda tenant_id, pools: locked(_ready(tenant_id).filter(pool__in=pools)))


@dataclass
class _Usage:
    """Slots in use in a tenant: task instances holding one (queued, running), per run and per pool."""

    active: int
    queued: int  # of the active ones, those no worker has started yet
    per_run: defaultdict[int, int]
    pool_slots: dict[str, int]  # queued and running
    deferred_pool_slots: dict[str, int]  # deferred (counted by pools with include_deferred)


def _slot_usage(tenant: Tenant) -> _Usage:
    rows = _SLOT_USAGE.all(tenant.pk)
    usage = _Usage(active=0, queued=0, per_run=defaultdict(int), pool_slots={}, deferred_pool_slots={})
    for state, pool, run_id, n, slots in rows:
        if state == TIState.DEFERRED:
            usage.deferred_pool_slots[pool] = usage.deferred_pool_slots.get(pool, 0) + slots
            continue
        usage.active += n
        usage.queued += n if state == TIState.QUEUED else 0
        usage.per_run[run_id] += n
        usage.pool_slots[pool] = usage.pool_slots.get(pool, 0) + slots
    return usage


def _pool_free_slots(tenant: Tenant, usage: _Usage) -> dict[str, float]:
    """Free slots of each of the tenant's pools; a pool that does not exist has none (its tasks wait until it
    is created)."""
    return {
        pool.name: pool.open_slots(
            active=usage.pool_slots.get(pool.name, 0), deferred=usage.deferred_pool_slots.get(pool.name, 0)
        )
        for pool in _POOLS.all(tenant.pk)
    }


def requeue_lost(tenant: Tenant, executor: Executor, now: datetime) -> None:
    """Recover from lost messages and dead workers.

    Queued too long (a broker restart lost the message): send it again — a duplicate delivery is harmless,
    because only one start of a try can win the fenced queued → running transition. Running without a
    heartbeat (the worker was killed): the try failed, and is retried according to its retries.
    """
    tis = TaskInstance.objects.for_tenant(tenant)
    stale_queued = tis.filter(
        state=TIState.QUEUED, queued_at__lt=now - timedelta(seconds=settings.TRADEWIND_QUEUED_TIMEOUT)
    )
    resend = [
        QueuedTask.of(tenant, ti) for ti in stale_queued.only("pk", "try_number", "queue", "priority_weight")
    ]
    if resend:
        logger.warning(
            "re-sending %d task instances queued too long", len(resend), extra={"tenant": tenant.slug}
        )
        tis.filter(pk__in=[task.ti_id for task in resend], state=TIState.QUEUED).update(queued_at=now)
        executor.submit(resend)
    heartbeat_limit = now - timedelta(seconds=settings.TRADEWIND_ZOMBIE_TIMEOUT)
    zombies = tis.filter(state=TIState.RUNNING).filter(
        Q(heartbeat_at__lt=heartbeat_limit) | Q(heartbeat_at__isnull=True, start_date__lt=heartbeat_limit)
    )
    for ti in zombies:
        logger.warning("task instance lost its heartbeat", extra={"tenant": tenant.slug, "ti_id": ti.pk})
        services.finish_task_instance(
            ti,
            {
                "state": "failed",
                "error": "the task's worker stopped heartbeating (killed or lost)",
                "fail_fast": False,
            },
        )


@dataclass
class Timers:
    """When the tenant next needs a pass without any event (`wake`), and when requeue_lost may next find
    something (`recovery`: a queued message or a running heartbeat overdue; None while nothing is queued or
    running)."""

    wake: datetime
    recovery: datetime | None


def next_timers(tenant: Tenant, now: datetime) -> Timers:
    """The earliest moments something becomes due without an event: a run, a retry, a reschedule, a lost
    message to re-send, a task without heartbeat; at most TRADEWIND_SCHEDULER_MAX_SLEEP away."""
    next_run = _NEXT_RUN_AT.all(tenant.pk, now)
    timers = _TI_TIMERS.all(tenant.pk)
    retry, queued, beat = timers[0] if timers else (None, None, None)
    overdue = [
        queued and queued + timedelta(seconds=settings.TRADEWIND_QUEUED_TIMEOUT),
        beat and beat + timedelta(seconds=settings.TRADEWIND_ZOMBIE_TIMEOUT),
    ]
    recovery = min((at for at in overdue if at is not None), default=None)
    wake = min(
        at
        for at in (
            now + timedelta(seconds=settings.TRADEWIND_SCHEDULER_MAX_SLEEP),
            next_run[0][0] if next_run else None,
            retry,
            recovery,
        )
        if at is not None
    )
    return Timers(wake=wake, recovery=recovery)
