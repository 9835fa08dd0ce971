"""The worker's default Celery pool: Celery's threads pool, with every thread started and warmed up before the
worker takes its first message.

Without it each pool thread opens its database connection and compiles and prepares the runner's reads during
its first task: tens of milliseconds per thread, all at once when a fresh worker gets its first burst of
messages, on the tasks' clock.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import wait

from celery.concurrency.thread import TaskPool

log = logging.getLogger(__name__)

WARM_UP_TIMEOUT_S = 30.0


class WarmThreadPool(TaskPool):
    """Celery's threads pool whose threads are all started, each with its warm-up run, when the pool starts."""

    def on_start(self) -> None:
        super().on_start()
        # Each warm-up holds its thread until every one has started, so the executor starts `limit` threads
        # rather than handing the next warm-up to a thread that finished its own.
        all_started = threading.Barrier(self.limit)
        warm_ups = [self.executor.submit(_warm_up_thread, all_started) for _ in range(self.limit)]
        wait(warm_ups, timeout=WARM_UP_TIMEOUT_S)


def _warm_up_thread(all_started: threading.Barrier) -> None:
    from scheduler.services import warm_up_thread

    try:
        warm_up_thread()
    except Exception:  # the database is away: the first task of this thread connects instead
        log.warning("could not warm up a worker thread", exc_info=True)
    try:
        all_started.wait(WARM_UP_TIMEOUT_S)
    except threading.BrokenBarrierError:
        pass
