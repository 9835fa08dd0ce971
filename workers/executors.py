"""Executors: where queued task instances go to run. Local thread pool (embedded) or Celery queues."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.db import close_old_connections, connections

if TYPE_CHECKING:
    from scheduler.models import TaskInstance
    from tenants.models import Tenant

logger = logging.getLogger(__name__)

# A thread running tries back to back checks its database connections at most this often (unless one of them
# failed or expired since): Django's health check is a SELECT 1 round trip, and every try would pay one for a
# connection it used a moment before.
CONNECTION_CHECK_S = 1.0
_connections_checked = threading.local()


def check_connections() -> None:
    """Before a try: replace this thread's obsolete or broken database connections, as Django does at each
    request (close_old_connections, then a health check on first use), unless this thread did so less than
    CONNECTION_CHECK_S ago and no connection has since failed, expired (CONN_MAX_AGE: always, for 0) or been
    left outside autocommit."""
    now = time.monotonic()
    recent = now - getattr(_connections_checked, "at", -math.inf) < CONNECTION_CHECK_S
    if recent and not any(
        conn.errors_occurred
        or (conn.close_at is not None and now >= conn.close_at)
        or (conn.connection is not None and conn.autocommit != conn.settings_dict["AUTOCOMMIT"])
        for conn in connections.all(initialized_only=True)
    ):
        return
    close_old_connections()
    _connections_checked.at = now


@dataclass(frozen=True)
class QueuedTask:
    """What an executor needs to run one try: ids only, never models or secrets."""

    tenant_id: int
    tenant_slug: str
    ti_id: int
    try_number: int
    queue: str = "default"
    priority_weight: int = 1

    @classmethod
    def of(cls, tenant: Tenant, ti: TaskInstance) -> QueuedTask:
        """The message for the try `ti` is queued for."""
        return cls(tenant.pk, tenant.slug, ti.pk, ti.try_number, ti.queue, ti.priority_weight)


class Executor(Protocol):
    def submit(self, tasks: list[QueuedTask]) -> None: ...

    def submit_dag_callbacks(self, tenant_id: int, tenant_slug: str, dag_run_id: int) -> None:
        """Run a finished run's DAG-level callbacks (sandboxed, like tasks: never in the scheduler)."""

    def free_slots(self) -> int | None:
        """How many more tasks it can start now; None: no local limit (Celery workers have their own)."""

    def shutdown(self, wait: bool = True) -> None: ...


class LocalExecutor:
    """Runs task instances on a pool of threads in this process, each driving one sandboxed child."""

    def __init__(self, parallelism: int | None = None) -> None:
        from workers import runner, sandbox  # noqa: F401  (imported now, not during the first task)

        # As a Celery worker does before its first message: the fork server's imports and warm-up (a
        # quarter of a CPU-second) would otherwise delay the first task and compete with the first run.
        sandbox.prestart()
        self.parallelism = parallelism or settings.TRADEWIND_PARALLELISM
        self._pool = ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="task")
        self._busy = 0
        self._lock = threading.Lock()
        self._thread_connections: set = set()  # the database connections its threads keep between tasks

    def submit(self, tasks: list[QueuedTask]) -> None:
        for task in tasks:
            with self._lock:
                self._busy += 1
            self._pool.submit(self._run, task)

    def submit_dag_callbacks(self, tenant_id: int, tenant_slug: str, dag_run_id: int) -> None:
        self._pool.submit(self._run_callbacks, tenant_id, dag_run_id)

    def _run_callbacks(self, tenant_id: int, dag_run_id: int) -> None:
        from workers.runner import run_dag_callbacks

        try:
            check_connections()
            run_dag_callbacks(tenant_id=tenant_id, dag_run_id=dag_run_id)
        except Exception:
            logger.exception("local executor: DAG callbacks failed", extra={"dag_run_id": dag_run_id})

    def free_slots(self) -> int:
        with self._lock:
            return max(self.parallelism - self._busy, 0)

    def _run(self, task: QueuedTask) -> None:
        from workers.runner import run_task_instance

        try:
            # The thread keeps its connection between tasks (and with it PostgreSQL's prepared statements);
            # an obsolete or broken one is replaced here.
            check_connections()
            run_task_instance(tenant_id=task.tenant_id, ti_id=task.ti_id, try_number=task.try_number)
        except Exception:  # the runner records task failures itself; this is an infrastructure fault
            logger.exception("local executor: running a task instance failed", extra={"ti_id": task.ti_id})
        finally:
            with self._lock:
                self._busy -= 1
                self._thread_connections.update(connections.all(initialized_only=True))
            from scheduler import wakeup

            wakeup.notify_local(task.tenant_id)  # a slot is free: the scheduler may queue more

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        if wait:  # its threads are gone: close the connections they kept (else only a collection would)
            for db in self._thread_connections:
                db.inc_thread_sharing()
                try:
                    db.close()
                finally:
                    db.dec_thread_sharing()
            self._thread_connections.clear()


class CeleryExecutor:
    """Sends each task instance to its tenant's Celery queue, `tenant.<slug>.<queue>`, as (tenant id, task
    instance id, try number). A message that cannot be sent (the broker is down) is left to the scheduler:
    the task instance stays queued and is sent again after TRADEWIND_QUEUED_TIMEOUT."""

    def __init__(self) -> None:
        # Celery's import, the broker connection, the (disabled) result backend and Celery's message sender
        # cost the first pass that queues anything a quarter of a second; a scheduler pays them when it
        # starts instead.
        from tradewind.celery import app

        _ = (app.backend, app.amqp.send_task_message)
        try:
            with app.producer_or_acquire() as producer:
                producer.connection.ensure_connection(max_retries=1, timeout=2)
        except Exception:  # the broker is away: the first submit tries again
            logger.warning("could not reach the broker yet", exc_info=True)

    def submit(self, tasks: list[QueuedTask]) -> None:
        from tradewind.celery import RUN_TASK_INSTANCE, app, queue_name

        if not tasks:
            return
        try:
            # One connection for the whole batch and, on Redis, few round trips: the first FIRST_SEND messages
            # go out as soon as they are built, so that workers start on them while the rest are built (half a
            # millisecond each), then batches twice as large as everything sent before. The arguments' repr
            # (shown by monitoring tools) is given: Celery's own safe repr costs a quarter of each message's CPU.
            with app.producer_or_acquire() as producer, _pipelined(producer) as send_pending:
                for built, task in enumerate(tasks, 1):
                    args = [task.tenant_id, task.ti_id, task.try_number]
                    app.send_task(
                        RUN_TASK_INSTANCE,
                        args=args,
                        argsrepr=repr(args),
                        kwargsrepr="{}",
                        queue=queue_name(task.tenant_slug, task.queue),
                        producer=producer,
                    )
                    if built >= FIRST_SEND and built & (built - 1) == 0:  # 8, 16, 32, ...
                        send_pending()
        except Exception:
            logger.warning(
                "could not send task instances to the broker; they are re-sent after the queued timeout",
                exc_info=True,
                extra={"ti_ids": [task.ti_id for task in tasks][:20]},
            )

    def submit_dag_callbacks(self, tenant_id: int, tenant_slug: str, dag_run_id: int) -> None:
        from tradewind.celery import RUN_DAG_CALLBACKS, app, queue_name

        try:
            app.send_task(RUN_DAG_CALLBACKS, args=[tenant_id, dag_run_id], queue=queue_name(tenant_slug))
        except Exception:
            logger.warning("could not send DAG callbacks to the broker", exc_info=True)

    def free_slots(self) -> None:
        return None

    def shutdown(self, wait: bool = True) -> None:
        return None


# How many of a pass's messages are sent before the rest are built: a worker's default number of threads.
FIRST_SEND = 8


@contextmanager
def _pipelined(producer) -> Iterator[Callable[[], None]]:
    """With the Redis transport, the Redis commands of the messages published meanwhile go out in one
    pipeline when the block ends or the function it gives is called, instead of one round trip per message
    (a scheduling pass may queue hundreds). Publishing to Redis only writes (LPUSH, and SADD for a queue's
    first binding), so no command in between needs a reply. Other transports publish as they do."""
    from kombu.transport import redis as kombu_redis

    channel = producer.channel
    if not isinstance(channel, kombu_redis.Channel):
        yield lambda: None
        return
    pipe = channel.client.pipeline(transaction=False)
    channel.conn_or_acquire = lambda client=None: nullcontext(pipe)  # what kombu's Redis channel writes with
    try:
        yield pipe.execute
        pipe.execute()
    finally:
        del channel.conn_or_acquire


def get_executor() -> Executor:
    """The configured executor: Celery when a broker URL is set, the local pool otherwise."""
    if settings.TRADEWIND_EXECUTOR == "celery":
        return CeleryExecutor()
    return LocalExecutor()
