"""Reusable reads of runs and task instances, always scoped to one tenant or one run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.db import connections
from django.db.models import Count, Model, QuerySet
from django.db.models.query import get_related_populators

from scheduler.models import NO_MAP_INDEX, DagRun, TaskInstance
from scheduler.states import ACTIVE, RunType
from tradewind.errors import NotFound

if TYPE_CHECKING:
    from tenants.models import Tenant

M = TypeVar("M", bound=Model)


class PreparedRead(Generic[M]):
    """A read of one row by one value, compiled to SQL once per thread and database, then run as is.

    Django compiles a queryset to SQL every time it is evaluated; for a read with several select_related
    joins that costs ten times what the database spends answering it, which matters on a path every task
    try takes. `build(value)` gives the queryset; it is compiled once with a marker value, and each `get`
    swaps its value in for the marker (so `value` must reach the SQL as a parameter unchanged: an id or a
    string compared for equality). Rows become model instances, with their related objects, as Django's own
    iteration makes them."""

    MARKER = -7_340_032_911_287_051  # an id no row has

    def __init__(self, build: Callable[[Any], QuerySet[M]]) -> None:
        self._build = build
        self._local = threading.local()

    def get(self, value: Any, *, using: str = "default") -> M | None:
        """The first row the queryset gives for `value`, or None."""
        read = self._compiled(using)
        params = list(read.params)
        params[read.position] = value
        with connections[using].cursor() as cursor:
            cursor.execute(read.sql, params)
            rows = cursor.fetchmany(1)
        if read.converters:
            rows = list(read.compiler.apply_converters(rows, read.converters))
        for row in rows:
            obj = read.model.from_db(using, read.names, row[read.start : read.end])
            for populator in read.populators:
                populator.populate(row, obj)
            return obj
        return None

    def _compiled(self, using: str) -> _Compiled:
        cache = self._local.__dict__.setdefault("by_alias", {})
        if using not in cache:
            cache[using] = _Compiled(self._build(self.MARKER).query.get_compiler(using=using), self.MARKER)
        return cache[using]


class _Compiled:
    """What PreparedRead works out once: the SQL, where its value goes, and how a row becomes objects (the
    columns' converters, the main model's fields, the related objects' populators)."""

    def __init__(self, compiler: Any, marker: Any) -> None:
        self.compiler = compiler
        self.sql, params = compiler.as_sql()
        if list(params).count(marker) != 1:
            raise ValueError("the prepared read must use its value exactly once, as a parameter")
        self.params, self.position = tuple(params), list(params).index(marker)
        self.converters = compiler.get_converters([s[0] for s in compiler.select[: compiler.col_count]])
        info = compiler.klass_info
        self.model = info["model"]
        self.start, self.end = info["select_fields"][0], info["select_fields"][-1] + 1
        self.names = [column[0].target.attname for column in compiler.select[self.start : self.end]]
        self.populators = get_related_populators(info, compiler.select, compiler.using)


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
