"""Task-instance and DAG-run states, every legal transition, and the one door every state write uses."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from django.db import connections, models, router, transaction

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

    from scheduler.models import DagRun, TaskInstance
    from scheduler.queries import PreparedRead


class TIState(models.TextChoices):
    """Airflow's task-instance states."""

    NONE = "none"  # a value, not NULL: filter(state__in=[None]) would match nothing
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"
    REMOVED = "removed"
    DEFERRED = "deferred"
    RESTARTING = "restarting"


class DagRunState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class RunType(models.TextChoices):
    MANUAL = "manual"
    SCHEDULED = "scheduled"
    BACKFILL = "backfill"
    ASSET_TRIGGERED = "asset_triggered"


S = TIState
FINISHED = frozenset({S.SUCCESS, S.FAILED, S.SKIPPED, S.UPSTREAM_FAILED, S.REMOVED})
UNFINISHED = frozenset(set(S) - FINISHED)
# States in which a task holds (or is about to hold) an execution slot.
ACTIVE = frozenset({S.QUEUED, S.RUNNING})
FAILED_STATES = frozenset({S.FAILED, S.UPSTREAM_FAILED})
RUN_FINISHED = frozenset({DagRunState.SUCCESS, DagRunState.FAILED})

_RESET = {S.NONE}  # clearing a task instance
_MARKED = {S.SUCCESS, S.FAILED, S.SKIPPED}  # a user marks a task instance
ALLOWED: dict[TIState, frozenset[TIState]] = {
    S.NONE: frozenset({S.SCHEDULED, S.SKIPPED, S.UPSTREAM_FAILED, S.REMOVED, *_MARKED}),
    S.SCHEDULED: frozenset({S.QUEUED, S.SKIPPED, S.UPSTREAM_FAILED, S.REMOVED, *_RESET, *_MARKED}),
    S.QUEUED: frozenset({S.RUNNING, S.SCHEDULED, S.FAILED, S.UP_FOR_RETRY, S.REMOVED, *_RESET, *_MARKED}),
    S.RUNNING: frozenset(
        {
            S.SUCCESS,
            S.FAILED,
            S.SKIPPED,
            S.UP_FOR_RETRY,
            S.UP_FOR_RESCHEDULE,
            S.DEFERRED,
            S.RESTARTING,
            *_RESET,
        }
    ),
    S.DEFERRED: frozenset({S.SCHEDULED, S.FAILED, S.UP_FOR_RETRY, S.SKIPPED, *_RESET, *_MARKED}),
    S.UP_FOR_RETRY: frozenset({S.SCHEDULED, S.UPSTREAM_FAILED, S.SKIPPED, S.REMOVED, *_RESET, *_MARKED}),
    S.UP_FOR_RESCHEDULE: frozenset({S.SCHEDULED, S.UPSTREAM_FAILED, S.SKIPPED, S.REMOVED, *_RESET, *_MARKED}),
    S.RESTARTING: frozenset({S.NONE, S.SCHEDULED, S.FAILED, S.UP_FOR_RETRY}),
    S.SUCCESS: frozenset({*_RESET, *_MARKED, S.REMOVED}),
    S.FAILED: frozenset({*_RESET, *_MARKED, S.REMOVED}),
    S.SKIPPED: frozenset({*_RESET, *_MARKED, S.REMOVED}),
    S.UPSTREAM_FAILED: frozenset({*_RESET, *_MARKED, S.REMOVED, S.SCHEDULED, S.SKIPPED}),
    S.REMOVED: frozenset({*_RESET}),
}

RUN_ALLOWED: dict[DagRunState, frozenset[DagRunState]] = {
    DagRunState.QUEUED: frozenset({DagRunState.RUNNING, DagRunState.SUCCESS, DagRunState.FAILED}),
    DagRunState.RUNNING: frozenset({DagRunState.SUCCESS, DagRunState.FAILED, DagRunState.QUEUED}),
    DagRunState.SUCCESS: frozenset({DagRunState.QUEUED, DagRunState.FAILED}),
    DagRunState.FAILED: frozenset({DagRunState.QUEUED, DagRunState.SUCCESS}),
}


class InvalidTransition(Exception):
    """A state change that the state machine does not allow: a programming error, not a race."""

    def __init__(self, current: str, to: str) -> None:
        super().__init__(f"illegal transition {current} -> {to}")
        self.current, self.to = current, to


def transition(ti: TaskInstance, to: TIState, **fields: Any) -> bool:
    """Move `ti` from the state we read to `to`; False if someone moved it (or its try) first.

    On success the in-memory object is updated too, so callers can go on using it.
    """
    using, statement = _move_statement(type(ti), ti.pk, ti.try_number, TIState(ti.state), to, fields)
    if execute(using, statement) != 1:
        return False
    _set_moved(ti, to, fields)
    return True


def execute(using: str, statement: tuple[str, list[Any]]) -> int:
    """Run one statement (SQL, parameters) on database `using`; the number of rows it changed."""
    with connections[using].cursor() as cursor:
        cursor.execute(*statement)
        return cursor.rowcount


def writes_in_with(using: str) -> bool:
    """Whether the database runs writes inside a statement's WITH clauses (PostgreSQL does), so that a move
    and what goes with it can be one statement; elsewhere they are run one after another."""
    return connections[using].vendor == "postgresql"


def _set_moved(ti: TaskInstance, to: TIState, fields: dict[str, Any]) -> None:
    ti.state = to
    for name, value in fields.items():
        setattr(ti, name, value)


# What a statement written with a transition (transition_and_write) reads the moved row from: its id.
MOVED = "moved"


def transition_and_write(
    ti: TaskInstance, to: TIState, writes: list[tuple[str, list[Any]]], **fields: Any
) -> bool:
    """transition(), and only if it moves the row, `writes` with it: statements (SQL, parameters) that read
    the moved row's id FROM MOVED. On PostgreSQL all one statement (the UPDATE and each write in a WITH
    clause); elsewhere the UPDATE, then each write with MOVED a WITH clause of the row's id, in a
    transaction."""
    if not writes:
        return transition(ti, to, **fields)
    model = type(ti)
    using, (update_sql, params) = _move_statement(model, ti.pk, ti.try_number, TIState(ti.state), to, fields)
    connection = connections[using]
    if writes_in_with(using):
        pk = connection.ops.quote_name(model._meta.pk.column)
        clauses = [f"{MOVED} AS ({update_sql} RETURNING {pk} AS id)"]
        for n, (sql, write_params) in enumerate(writes):
            clauses.append(f"write_{n} AS ({sql})")
            params = [*params, *write_params]
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {', '.join(clauses)} SELECT COUNT(*) FROM {MOVED}", params)
            moved = cursor.fetchone()[0] == 1
    else:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            cursor.execute(update_sql, params)
            moved = cursor.rowcount == 1
            for sql, write_params in writes if moved else []:
                cursor.execute(f"WITH {MOVED} AS (SELECT %s AS id) {sql}", [ti.pk, *write_params])
    if moved:
        _set_moved(ti, to, fields)
    return moved


def transition_row_and_read(
    model: type[TaskInstance],
    read: PreparedRead[TaskInstance],
    pk: int,
    try_number: int,
    current: TIState,
    to: TIState,
    *,
    tenant_id: int | None = None,
    computed: dict[str, tuple[str, list[Any]]] | None = None,
    **fields: Any,
) -> TaskInstance | None:
    """transition() for a row that was not read, then `read` (a PreparedRead of task instances by id) of the
    row as moved, in one statement where the database can (see PreparedRead.get): the UPDATE of row `pk` (of
    `tenant_id`'s, when given) is fenced on `current` and `try_number`; `fields` are plain values, `computed`
    ones SQL expressions (see update_row). None if the row was not moved (or not there at all)."""
    using, statement = _move_statement(model, pk, try_number, current, to, fields, tenant_id, computed)
    return read.get(pk, using=using, after=statement)


def _move_statement(
    model: type[TaskInstance],
    pk: int,
    try_number: int,
    current: TIState,
    to: TIState,
    fields: dict[str, Any],
    tenant_id: int | None = None,
    computed: dict[str, tuple[str, list[Any]]] | None = None,
) -> tuple[str, tuple[str, list[Any]]]:
    """(database alias, (SQL, parameters)) of the UPDATE that moves row `pk` from `current` (in try
    `try_number`) to `to`, setting `fields` and `computed` (see update_row)."""
    if to not in ALLOWED[current]:
        raise InvalidTransition(current, to)
    fence = {"id": pk, "try_number": try_number, "state": current}
    if tenant_id is not None:
        fence["tenant_id"] = tenant_id
    using = router.db_for_write(model)
    statement = update_statement(model, fence, {"state": to, **fields}, computed, using)
    assert statement is not None  # its fence holds no list
    return using, statement


def update_row(
    model: type[models.Model],
    fence: dict[str, Any],
    fields: dict[str, Any],
    computed: dict[str, tuple[str, list[Any]]] | None = None,
) -> int:
    """UPDATE `model`'s rows whose `fence` fields equal their values, or one of them for a list (the primary
    key among them): the SQL that queryset.filter(**fence).update(**fields) sends, built without Django's
    query compiler, which costs more CPU than the database spends on such an UPDATE (every task try makes
    two). `computed` sets a field to an SQL expression: (template, values), where {name} in the template
    stands for a field's column and each %s for one of the values, prepared as the field's. Returns the
    number of rows changed."""
    using = router.db_for_write(model)
    statement = update_statement(model, fence, fields, computed, using)
    return 0 if statement is None else execute(using, statement)


def update_statement(
    model: type[models.Model],
    fence: dict[str, Any],
    fields: dict[str, Any],
    computed: dict[str, tuple[str, list[Any]]] | None,
    using: str,
) -> tuple[str, list[Any]] | None:
    """update_row's (SQL, parameters); None when a fence's list is empty (no row can match)."""
    connection = connections[using]
    meta = model._meta
    columns = quoted_columns(model, using)
    sets, params = [], []
    for name, value in fields.items():
        field = meta.get_field(name)
        sets.append(f"{columns[name]} = %s")
        params.append(db_value(field, value, connection))
    for name, (template, values) in (computed or {}).items():
        field = meta.get_field(name)
        sets.append(f"{columns[name]} = {template.format(**columns)}")
        params += [db_value(field, value, connection) for value in values]
    wheres = []
    for name, value in fence.items():
        field = meta.pk if name in ("pk", "id") else meta.get_field(name)
        values = value if isinstance(value, list | tuple) else [value]
        if not values:
            return None
        marks = ", ".join(["%s"] * len(values))
        wheres.append(
            f"{columns[field.name]} IN ({marks})" if value is values else f"{columns[field.name]} = %s"
        )
        params += [db_value(field, v, connection) for v in values]
    sql = f"UPDATE {connection.ops.quote_name(meta.db_table)} SET {', '.join(sets)} WHERE {' AND '.join(wheres)}"
    return sql, params


def db_value(field: models.Field, value: Any, connection: BaseDatabaseWrapper) -> Any:
    """`value` as a parameter of a statement that writes or compares `field`: field.get_db_prep_save(value),
    with a key's int (an auto field's or a foreign key's) typed as its column, as Django types the other
    integer fields' ints. Django leaves a key's int to psycopg, which types it by its size (smallint up to
    32767, then integer, then bigint); PostgreSQL prepares a statement once per parameter types, so ids of
    each size would prepare it anew, and a warm-up with a marker id would prepare one no real id uses."""
    value = field.get_db_prep_save(value, connection)
    key = field.target_field if field.is_relation else field
    column_type = _KEY_COLUMN_TYPES.get(key.get_internal_type())
    if column_type is None or type(value) is not int:
        return value
    return connection.ops.adapt_integerfield_value(value, column_type)


# The integer field whose parameters Django types as each auto field's column.
_KEY_COLUMN_TYPES = {
    "AutoField": "IntegerField",
    "BigAutoField": "BigIntegerField",
    "SmallAutoField": "SmallIntegerField",
}


@functools.lru_cache(maxsize=16)
def quoted_columns(model: type[models.Model], using: str) -> dict[str, str]:
    """Field name and attname -> quoted column, per model and database."""
    quote = connections[using].ops.quote_name
    fields = model._meta.concrete_fields
    return {f.name: quote(f.column) for f in fields} | {f.attname: quote(f.column) for f in fields}


def transition_run(run: DagRun, to: DagRunState, **fields: Any) -> bool:
    """DagRun's twin of transition(): fenced on the state we read."""
    if to not in RUN_ALLOWED[DagRunState(run.state)]:
        raise InvalidTransition(run.state, to)
    fence = type(run).objects.filter(pk=run.pk, state=run.state)
    if fence.update(state=to, **fields) != 1:
        return False
    run.state = to
    for name, value in fields.items():
        setattr(run, name, value)
    return True
