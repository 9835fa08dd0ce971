"""DAGs and helpers shared by the run-control tests (services driven on the database, outcomes by hand)."""

from __future__ import annotations

import datetime as dt

from scheduler import services
from scheduler.models import DagRun, TaskInstance, TaskInstanceHistory
from tests.scheduler.engine import START, run_once, states_of
from tradewind.accounts.actors import Actor
from tradewind.audit.models import AuditEntry
from tradewind.sdk import DAG, task
from tradewind.sdk.operators.empty import EmptyOperator

ACTOR = Actor.system("tests")


def chain_dag(dag_id: str = "chain", *, schedule: str | None = None, retries: int = 0, **dag_kwargs) -> DAG:
    """a >> b >> c >> d"""
    with DAG(dag_id, schedule=schedule, start_date=START, **dag_kwargs) as dag:
        a = EmptyOperator(task_id="a", retries=retries)
        b = EmptyOperator(task_id="b", retries=retries)
        c = EmptyOperator(task_id="c", retries=retries)
        d = EmptyOperator(task_id="d", retries=retries)
        a >> b >> c >> d
    return dag


def mapped_dag(dag_id: str = "mapped") -> DAG:
    """make >> double.expand(x=make) >> total"""
    with DAG(dag_id, schedule=None, start_date=START) as dag:

        @task
        def make():
            return [1, 2, 3]

        @task
        def double(x):
            return 2 * x

        @task
        def total(values):
            return sum(values)

        total(double.expand(x=make()))
    return dag


def advance(run: DagRun, outcomes: dict | None = None, *, only: set[str] | None = None) -> dict[str, str]:
    """One scheduling round: schedule the run, then queue and finish (with `outcomes`, default success)
    every ready task instance (those of `only` when given); returns the states after."""
    outcomes = outcomes or {}
    ready = services.schedule_run(run)
    if only is not None:
        ready = [ti for ti in ready if ti.task_id in only]
    for ti in services.queue_task_instances(ready):
        label = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        run_once(run, ti, outcomes.get(label, outcomes.get(ti.task_id)))
    run.refresh_from_db()
    return states_of(run)


def start_only(run: DagRun, task_id: str) -> TaskInstance:
    """Schedule the run and start `task_id` (queued → running) as a worker would, without finishing it."""
    ready = [ti for ti in services.schedule_run(run) if ti.task_id == task_id]
    (queued,) = services.queue_task_instances(ready)
    started = services.start_task_instance(
        tenant_id=queued.tenant_id, ti_id=queued.pk, try_number=queued.try_number, hostname="h", pid=None
    )
    assert started is not None
    return started


def ti(run: DagRun, task_id: str, map_index: int = -1) -> TaskInstance:
    return TaskInstance.objects.get(dag_run=run, task_id=task_id, map_index=map_index)


def history(run: DagRun, task_id: str) -> list[tuple[int, str]]:
    """(try_number, state) of the recorded tries of the task's instances in the run."""
    return list(
        TaskInstanceHistory.objects.filter(task_instance__dag_run=run, task_instance__task_id=task_id)
        .order_by("task_instance__map_index", "try_number")
        .values_list("try_number", "state")
    )


def audit_actions(tenant) -> list[str]:
    return list(
        AuditEntry.objects.filter(tenant_id=tenant.pk).order_by("seq").values_list("action", flat=True)
    )


def at(day: int, month: int = 1, hour: int = 0) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, tzinfo=dt.UTC)
