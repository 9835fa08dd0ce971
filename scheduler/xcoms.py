"""Writing a running try's XComs: one upsert statement per key, fenced on the try.

A worker defers a try's pushes to its finish (workers.rpc.TaskRpcHandler), where they are written in the same
statement as the task instance's success (states.transition_and_write): the value a task returns costs no
statement of its own, and its XCom exists exactly when its success does. Pushes of a try that ends otherwise
are written fenced on the try still running, as they were when pushed.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connections, router
from django.utils import timezone

from scheduler.models import TaskInstance, XCom
from scheduler.states import MOVED, TIState, db_value, execute, quoted_columns

# A try's pending XComs: key -> (value, size in bytes of its JSON).
Pending = dict[str, tuple[Any, int]]

# The columns upsert writes, in its order.
_ROW = ("tenant", "dag_run", "task_id", "map_index", "key", "value", "size_bytes", "timestamp")
_UNIQUE = ("dag_run", "task_id", "map_index", "key")
_REPLACED = ("value", "size_bytes", "timestamp")


def upsert(ti: TaskInstance, key: str, value: Any, size: int, *, after_move: bool) -> tuple[str, list[Any]]:
    """(SQL, parameters) storing XCom `key` of `ti` (a second write of a key replaces its value): read FROM
    states.MOVED when `after_move` (written with a transition), else fenced on `ti` running its try."""
    using = router.db_for_write(XCom)
    connection = connections[using]
    row = (ti.tenant_id, ti.dag_run_id, ti.task_id, ti.map_index, key, value, size, timezone.now())
    params = [db_value(XCom._meta.get_field(name), v, connection) for name, v in zip(_ROW, row, strict=True)]
    if not after_move:
        fence = {"id": ti.pk, "try_number": ti.try_number, "state": TIState.RUNNING.value}
        params += [db_value(TaskInstance._meta.get_field(name), v, connection) for name, v in fence.items()]
    return _upsert_sql(using, after_move), params


@functools.cache
def _upsert_sql(using: str, after_move: bool) -> str:
    """upsert's SQL, the same for every XCom (every try that returns a value writes one)."""
    quote = connections[using].ops.quote_name
    xcom, ti = quoted_columns(XCom, using), quoted_columns(TaskInstance, using)
    if after_move:
        # WHERE: SQLite needs one to tell an upsert's ON CONFLICT from a join's ON.
        source = f"FROM {MOVED} WHERE true"
    else:
        source = (
            f"WHERE EXISTS (SELECT 1 FROM {quote(TaskInstance._meta.db_table)} "
            f"WHERE {ti['id']} = %s AND {ti['try_number']} = %s AND {ti['state']} = %s)"
        )
    unique = ", ".join(xcom[name] for name in _UNIQUE)
    replaced = ", ".join(f"{xcom[name]} = EXCLUDED.{xcom[name]}" for name in _REPLACED)
    return (
        f"INSERT INTO {quote(XCom._meta.db_table)} ({', '.join(xcom[name] for name in _ROW)}) "
        f"SELECT {', '.join(['%s'] * len(_ROW))} {source} ON CONFLICT ({unique}) DO UPDATE SET {replaced}"
    )


def store_while_running(ti: TaskInstance, pending: Pending) -> bool:
    """Write `pending` if `ti` still runs its try; False (and nothing written of the rest) when it does not."""
    using = router.db_for_write(XCom)
    return all(
        execute(using, upsert(ti, key, value, size, after_move=False))
        for key, (value, size) in pending.items()
    )


def writes_with_move(ti: TaskInstance, pending: Pending) -> list[tuple[str, list[Any]]]:
    """The statements that write `pending` with the transition of `ti` (see states.transition_and_write)."""
    return [upsert(ti, key, value, size, after_move=True) for key, (value, size) in pending.items()]
