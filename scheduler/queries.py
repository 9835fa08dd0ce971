"""Reusable reads of runs and task instances, always scoped to one tenant or one run."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db.models import Count, QuerySet

from scheduler.models import NO_MAP_INDEX, DagRun, TaskInstance
from scheduler.states import ACTIVE, RunType
from tradewind.errors import NotFound

if TYPE_CHECKING:
    from tenants.models import Tenant


def get_dag_run(*, tenant: Tenant | int, dag_id: str, run_id: str) -> DagRun:
    """The tenant's run `run_id` of DAG `dag_id`; NotFound otherwise (another tenant's run included)."""
    run = (
        DagRun.objects.for_tenant(tenant)
        .select_related("dag", "dag_version")
        .filter(dag__dag_id=dag_id, run_id=run_id)
        .first()
    )
    if run is None:
        raise NotFound(f"DAG {dag_id!r} has no run {run_id!r}")
    return run


def list_task_instances(run: DagRun) -> QuerySet[TaskInstance]:
    """The run's task instances, by task id and map index."""
    return TaskInstance.objects.for_tenant(run.tenant_id).filter(dag_run=run).order_by("task_id", "map_index")


def ti_label(task_id: str, map_index: int) -> str:
    """How a task instance is named in summaries: "task", or "task[i]" for a map index."""
    return task_id if map_index == NO_MAP_INDEX else f"{task_id}[{map_index}]"


def task_instance_states(run: DagRun) -> dict[str, str]:
    """label ("task" or "task[i]") -> state of every task instance of the run (`dags test --json`'s form)."""
    rows = list_task_instances(run).values_list("task_id", "map_index", "state")
    return {ti_label(task_id, map_index): state for task_id, map_index, state in rows}


def get_previous_run(run: DagRun, *, scheduled_only: bool = False) -> DagRun | None:
    """The DAG's run with the latest logical date before this run's (Airflow's get_previous_dagrun); with
    `scheduled_only`, manual runs are passed over (get_previous_scheduled_dagrun). None for a run without
    a logical date."""
    if run.logical_date is None:
        return None
    previous = DagRun.objects.for_tenant(run.tenant_id).filter(
        dag_id=run.dag_id, logical_date__lt=run.logical_date
    )
    if scheduled_only:
        previous = previous.exclude(run_type=RunType.MANUAL)
    return previous.order_by("-logical_date").first()


def count_active_task_instances(run_ids: Iterable[int]) -> dict[int, int]:
    """run id -> how many of its task instances hold an execution slot (queued or running)."""
    return dict(
        TaskInstance.objects.filter(dag_run_id__in=list(run_ids), state__in=ACTIVE)
        .values_list("dag_run_id")
        .annotate(n=Count("pk"))
        .values_list("dag_run_id", "n")
    )
