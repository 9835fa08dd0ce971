"""Reusable reads of runs and task instances, always scoped to one tenant or one run."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.db import connections
from django.db.models import Count, Model, QuerySet
from django.db.models.query import ModelIterable, ValuesListIterable, get_related_populators

from scheduler.models import NO_MAP_INDEX, DagRun, TaskInstance
from scheduler.states import ACTIVE, RunType, execute, writes_in_with
from tradewind.errors import NotFound

if TYPE_CHECKING:
    from tenants.models import Tenant

M = TypeVar("M", bound=Model)


class PreparedRead(Generic[M]):
    """A read by ids (and moments), compiled to SQL once per thread and database, then run as is.

    Django compiles a queryset to SQL every time it is evaluated; for the small reads that every task try and
    every scheduling pass make, that costs several times what the database spends answering them.
    `build(*args)` gives the queryset; it is compiled once with marker arguments, and each read swaps its
    arguments in for the markers. So each argument must reach the SQL as a parameter unchanged: an id
    compared for equality (bound as a bigint, as every key here is: DEFAULT_AUTO_FIELD), a list of ids or of
    names compared with __in (compiled once per length up to MAX_LIST, longer or empty ones go through the
    ORM), or an aware datetime compared with a datetime column (it reaches the SQL as the database backend
    adapts datetimes). Rows become model instances, with their related objects, as Django's own iteration
    makes them; a values_list queryset gives tuples, converted as Django converts them."""

    MARKER = -7_340_032_911_287_051  # an id no row has; argument i's markers count down from MARKER - 1000 i
    MOMENT_MARKER = datetime(1970, 1, 1, tzinfo=UTC)  # argument i's marker is i + 1 microseconds later
    MAX_LIST = 16

    def __init__(self, build: Callable[..., QuerySet[M]]) -> None:
        self._build = build
        self._arity = len(inspect.signature(build).parameters)
        self._local = threading.local()

    def get(self, *ids: Any, using: str = "default", after: tuple[str, list[Any]] | None = None) -> M | None:
        """The first row the queryset gives for `ids`, or None.

        `after` is an UPDATE (SQL and parameters) of the rows of the table the read starts from: the read
        then sees the rows as the UPDATE left them, and only those. On PostgreSQL that is one statement (the
        UPDATE in a WITH clause named after the table, whose RETURNING rows the read takes for the table's);
        elsewhere the UPDATE runs first, and nothing is read when it changed no row."""
        rows = self._rows(ids, using, first=True, after=after)
        return rows[0] if rows else None

    def all(self, *ids: Any, using: str = "default") -> list[Any]:
        """Every row the queryset gives for `ids`."""
        return self._rows(ids, using, first=False)

    def _rows(
        self, ids: tuple[Any, ...], using: str, *, first: bool, after: tuple[str, list[Any]] | None = None
    ) -> list[Any]:
        lists = [list(i) if isinstance(i, list | tuple | set | frozenset) else None for i in ids]
        shape = tuple(_shape_of(listed, one) for listed, one in zip(lists, ids, strict=True))
        together = after is not None and writes_in_with(using)
        if after is not None and not together and not execute(using, after):
            return []
        if any(_listed(n) is not None and not 0 < _listed(n) <= self.MAX_LIST for n in shape):
            if together:
                raise ValueError("a read after an UPDATE takes ids and lists of at most MAX_LIST items")
            queryset = self._build(*ids).using(using)
            return list(queryset[:1] if first else queryset)
        read = self._compiled(using, shape)
        ops = read.compiler.connection.ops
        values: list[Any] = []
        for listed, one in zip(lists, ids, strict=True):
            if isinstance(one, datetime):
                values.append(ops.adapt_datetimefield_value(one))
            else:
                # Ids typed as their bigint columns whatever their size (see states.db_value); names as they are.
                values += [
                    ops.adapt_integerfield_value(v, "BigIntegerField") if type(v) is int else v
                    for v in ([one] if listed is None else listed)
                ]
        params = list(read.params)
        for position, index in read.positions:
            params[position] = values[index]
        sql = read.sql
        if together:
            sql, params = read.after(after[0]), [*after[1], *params]
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchmany(1) if first else cursor.fetchall()
        if read.converters:
            rows = list(read.compiler.apply_converters(rows, read.converters))
        if read.model is None:
            return [tuple(row) for row in rows]
        objects = []
        for row in rows:
            obj = read.model.from_db(using, read.names, row[read.start : read.end])
            for populator in read.populators:
                populator.populate(row, obj)
            objects.append(obj)
        return objects

    def _compiled(self, using: str, shape: tuple[Any, ...]) -> _Compiled:
        if len(shape) != self._arity:
            raise TypeError(f"this prepared read takes {self._arity} arguments, not {len(shape)}")
        cache = self._local.__dict__.setdefault("compiled", {})
        if (using, shape) not in cache:
            arguments = [self._marker(i, n) for i, n in enumerate(shape)]
            markers = [m for a in arguments for m in (a if isinstance(a, list) else [a])]
            queryset = self._build(*arguments)
            cache[using, shape] = _Compiled(queryset, queryset.query.get_compiler(using=using), markers)
        return cache[using, shape]

    def _marker(self, i: int, shape: Any) -> Any:
        """Argument i's marker: ids count down from MARKER - 1000 i, names hold a NUL (no stored name
        does), a moment is i + 1 microseconds after MOMENT_MARKER."""
        if shape is None:
            return self.MARKER - 1000 * i
        if shape == _MOMENT:
            return self.MOMENT_MARKER + timedelta(microseconds=i + 1)
        if isinstance(shape, tuple):
            return [f"\x00marker {i} {j}" for j in range(shape[1])]
        return [self.MARKER - 1000 * i - j for j in range(shape)]


# A read's shape has, per argument: None (an id), _MOMENT (a datetime), n (a list of n ids) or (_NAMES, n).
_MOMENT = "moment"
_NAMES = "names"


def _shape_of(listed: list | None, one: Any) -> Any:
    if isinstance(one, datetime):
        return _MOMENT
    if listed is None:
        return None
    if listed and all(isinstance(item, str) for item in listed):
        return (_NAMES, len(listed))
    return len(listed)


def _listed(shape: Any) -> int | None:
    """How many items a list argument has (None for an id or a moment)."""
    if isinstance(shape, tuple):
        return shape[1]
    return shape if isinstance(shape, int) else None


class _Compiled:
    """What PreparedRead works out once: the SQL, where its ids go, and how a row becomes objects (the
    columns' converters, the main model's fields, the related objects' populators) or a tuple."""

    def __init__(self, queryset: QuerySet, compiler: Any, markers: list[Any]) -> None:
        self.compiler = compiler
        self.sql, params = compiler.as_sql()
        self.params = tuple(params)
        adapt = compiler.connection.ops.adapt_datetimefield_value
        index = {adapt(m) if isinstance(m, datetime) else m: i for i, m in enumerate(markers)}
        self.positions = [(i, index[p]) for i, p in enumerate(params) if _is_marker(p, index)]
        if sorted({marker for _, marker in self.positions}) != list(range(len(markers))):
            raise ValueError("every id of a prepared read must reach its SQL as a parameter")
        self.converters = compiler.get_converters([s[0] for s in compiler.select[: compiler.col_count]])
        self.table = compiler.connection.ops.quote_name(queryset.query.get_meta().db_table)
        self.model = None
        if queryset._iterable_class is ValuesListIterable:
            query = queryset.query
            names = [*query.extra_select, *query.values_select, *query.annotation_select]
            if list(queryset._fields) != names:
                raise ValueError("a prepared values_list must name every column it selects, in order")
            return
        if queryset._iterable_class is not ModelIterable:
            raise ValueError("a prepared read gives model instances or values_list tuples")
        info = compiler.klass_info
        self.model = info["model"]
        self.start, self.end = info["select_fields"][0], info["select_fields"][-1] + 1
        self.names = [column[0].target.attname for column in compiler.select[self.start : self.end]]
        self.populators = get_related_populators(info, compiler.select, compiler.using)

    def after(self, update_sql: str) -> str:
        """This read's SQL taking, for the table it starts from, the rows `update_sql` changes as it left
        them: a WITH clause of the table's name hides the table from the read, not from the UPDATE in it."""
        if not update_sql.startswith(f"UPDATE {self.table} "):
            raise ValueError(f"a prepared read can only follow an UPDATE of {self.table}")
        return f"WITH {self.table} AS ({update_sql} RETURNING *) {self.sql}"


def _is_marker(param: Any, markers: dict[Any, int]) -> bool:
    try:
        return not isinstance(param, bool) and param in markers  # True == 1, but is never an argument
    except TypeError:  # an unhashable parameter (a list for an array column) is no argument either
        return False


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
    return dict(_ACTIVE_PER_RUN.all(list(run_ids)))


_ACTIVE_PER_RUN = PreparedRead(
    lambda run_ids: (
        TaskInstance.objects.filter(dag_run_id__in=run_ids, state__in=ACTIVE)
        .values_list("dag_run_id")
        .annotate(n=Count("pk"))
        .values_list("dag_run_id", "n")
    )
)
