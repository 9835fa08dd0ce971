"""The scheduling loop of one tenant: create due runs, evaluate active runs, queue what is ready.

One `TenantScheduler` serves one tenant (a scheduler process may hold several). Each pass is a few bulk
queries; between passes it sleeps until the next timed event (a run due, a retry due) or until an event
wakes it (a task finished, a run triggered, a bundle uploaded) — never a fixed sleep on the critical path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, Q, Sum
from django.utils import timezone

from scheduler import services
from scheduler.models import AssetDagRunQueue, AssetEvent, Dag, DagRun, Pool, TaskInstance
from scheduler.states import ACTIVE, RUN_FINISHED, DagRunState, RunType, TIState, transition_run
from tenants.models import Tenant
from tradewind.accounts.actors import Actor
from workers.executors import Executor, QueuedTask

logger = logging.getLogger(__name__)

DEFAULT_POOL = "default_pool"


@dataclass
class PassResult:
    """What one scheduling pass did, and when the next one is needed at the latest."""

    runs_created: int = 0
    tasks_queued: int = 0
    next_wake: datetime | None = None


class TenantScheduler:
    """Schedules one tenant's DAGs onto an executor."""

    def __init__(self, tenant_id: int, executor: Executor) -> None:
        self.tenant_id = tenant_id
        self.executor = executor

    def run_pass(self, now: datetime | None = None) -> PassResult:
        """One scheduling pass; safe to run concurrently with another scheduler (every write is fenced)."""
        now = now or timezone.now()
        tenant = Tenant.objects.get(pk=self.tenant_id)
        result = PassResult()
        if not tenant.is_active:
            return result
        result.runs_created = create_due_runs(tenant, now) + create_asset_triggered_runs(tenant, now)
        start_queued_runs(tenant, now)
        for run in DagRun.objects.for_tenant(tenant).filter(state=DagRunState.RUNNING, dag__is_paused=False):
            services.schedule_run(run, now=now)
            if run.state in RUN_FINISHED:  # this pass finished it: its callbacks are ours to start
                self.executor.submit_dag_callbacks(tenant.pk, tenant.slug, run.pk)
        requeue_lost(tenant, self.executor, now)
        result.tasks_queued = len(queue_ready(tenant, self.executor))
        result.next_wake = next_timed_event(tenant, now)
        return result


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
    created = 0
    due = Dag.objects.for_tenant(tenant).filter(
        is_active=True, is_paused=False, active_version__isnull=False, next_dagrun_create_after__lte=now
    )
    for dag in due.select_related("active_version"):
        timetable, restriction = _timed_schedule(dag.active_version.serialized)
        active_runs = DagRun.objects.filter(
            dag=dag, state__in=[DagRunState.QUEUED, DagRunState.RUNNING]
        ).count()
        while active_runs < dag.max_active_runs:
            info = _next_run_info(dag, timetable, restriction)
            if info is None or info.run_after > now:
                _set_next_dagrun(dag, info)
                break
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
        # A DAG left at max_active_runs stays due: the next pass (woken when a run ends) looks again.
    return created


def create_asset_triggered_runs(tenant: Tenant, now: datetime) -> int:
    """Create a run for each asset-scheduled DAG whose asset condition is met by the queued updates."""
    from tradewind.sdk.assets import condition_from_serialized

    queued = AssetDagRunQueue.objects.for_tenant(tenant).select_related("asset", "target_dag__active_version")
    by_dag: dict[int, list[AssetDagRunQueue]] = {}
    for row in queued:
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
        if not condition_from_serialized(schedule["condition"]).evaluate(
            {row.asset.uri: True for row in rows}
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
    runs = DagRun.objects.for_tenant(tenant)
    running_total = runs.filter(state=DagRunState.RUNNING).count()
    running_per_dag = dict(
        runs.filter(state=DagRunState.RUNNING)
        .values_list("dag_id")
        .annotate(n=Count("pk"))
        .values_list("dag_id", "n")
    )
    queued = (
        runs.filter(state=DagRunState.QUEUED, dag__is_paused=False)
        .select_related("dag")
        .order_by("run_after", "pk")
    )
    for run in queued:
        if running_total >= tenant.max_active_runs:
            break
        if running_per_dag.get(run.dag_id, 0) >= run.dag.max_active_runs:
            continue
        if transition_run(run, DagRunState.RUNNING, start_date=now):
            running_total += 1
            running_per_dag[run.dag_id] = running_per_dag.get(run.dag_id, 0) + 1


def queue_ready(tenant: Tenant, executor: Executor, limit: int = 1024) -> list[QueuedTask]:
    """Queue scheduled task instances by priority, within pools, the tenant's quota, DAG limits and the
    executor's free slots; the executor gets them once the transaction commits."""
    free = executor.free_slots()
    if free == 0:
        return []
    tis = TaskInstance.objects.for_tenant(tenant)
    with transaction.atomic():
        candidates = list(
            tis.filter(state=TIState.SCHEDULED, dag_run__state=DagRunState.RUNNING)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("dag_run")
            .order_by("-priority_weight", "pk")[:limit]
        )
        if not candidates:
            return []
        active = tis.filter(state__in=ACTIVE)
        tenant_free = tenant.max_active_tasks - active.count()
        pool_free = _pool_free_slots(tenant, {ti.pool for ti in candidates})
        dag_ids = {ti.dag_run.dag_id for ti in candidates}
        dag_limits = dict(Dag.objects.filter(pk__in=dag_ids).values_list("pk", "max_active_tasks"))
        dag_active = dict(
            active.filter(dag_run__dag_id__in=dag_ids)
            .values_list("dag_run__dag_id")
            .annotate(n=Count("pk"))
            .values_list("dag_run__dag_id", "n")
        )
        chosen: list[TaskInstance] = []
        for ti in candidates:
            dag_id = ti.dag_run.dag_id
            if tenant_free <= 0 or (free is not None and len(chosen) >= free):
                break
            if pool_free.get(ti.pool, 0) < ti.pool_slots or dag_active.get(dag_id, 0) >= dag_limits.get(
                dag_id, 0
            ):
                continue
            chosen.append(ti)
            tenant_free -= 1
            pool_free[ti.pool] -= ti.pool_slots
            dag_active[dag_id] = dag_active.get(dag_id, 0) + 1
        queued = services.queue_task_instances(chosen)
        messages = [
            QueuedTask(tenant.pk, tenant.slug, ti.pk, ti.try_number, ti.queue, ti.priority_weight)
            for ti in queued
        ]
        transaction.on_commit(lambda: executor.submit(messages))
    return messages


def _pool_free_slots(tenant: Tenant, names: set[str]) -> dict[str, float]:
    """Free slots per pool; the default pool is created on first use, unknown pools have none."""
    if DEFAULT_POOL in names:
        Pool.objects.get_or_create(tenant=tenant, name=DEFAULT_POOL, defaults={"slots": 128})
    pools = {pool.name: pool for pool in Pool.objects.for_tenant(tenant).filter(name__in=names)}
    used_states = Q(state__in=ACTIVE) | Q(
        state=TIState.DEFERRED, pool__in=[p.name for p in pools.values() if p.include_deferred]
    )
    used = dict(
        TaskInstance.objects.for_tenant(tenant)
        .filter(used_states, pool__in=pools.keys())
        .values_list("pool")
        .annotate(n=Sum("pool_slots"))
        .values_list("pool", "n")
    )
    return {
        name: float("inf") if pool.slots < 0 else pool.slots - (used.get(name) or 0)
        for name, pool in pools.items()
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
        QueuedTask(tenant.pk, tenant.slug, ti.pk, ti.try_number, ti.queue, ti.priority_weight)
        for ti in stale_queued
    ]
    if resend:
        logger.warning(
            "re-sending %d task instances queued too long", len(resend), extra={"tenant": tenant.slug}
        )
        stale_queued.update(queued_at=now)
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


def next_timed_event(tenant: Tenant, now: datetime) -> datetime:
    """The earliest moment something becomes due without an event: a run, a retry, a reschedule."""
    candidates = [now + timedelta(seconds=settings.TRADEWIND_SCHEDULER_MAX_SLEEP)]
    next_run = (
        Dag.objects.for_tenant(tenant)
        .filter(is_active=True, is_paused=False)
        .aggregate(at=Min("next_dagrun_create_after"))["at"]
    )
    next_retry = (
        TaskInstance.objects.for_tenant(tenant)
        .filter(state__in=[TIState.UP_FOR_RETRY, TIState.UP_FOR_RESCHEDULE])
        .aggregate(at=Min("next_retry_at"))["at"]
    )
    candidates += [at for at in (next_run, next_retry) if at is not None]
    return min(candidates)
