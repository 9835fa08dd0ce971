"""Heartbeats of the tries a process runs: one thread and one database connection per process.

Every TRADEWIND_HEARTBEAT_SECONDS the thread stamps heartbeat_at on each of its tries that is still running
in the database, in one UPDATE, and writes the child's pid the first time it is known (a try shorter than a
beat never does: one write less per task). The scheduler fails a running try whose heartbeat stops. A try
that is no longer running this try in the database — a user cleared it (restarting), marked it, or deleted
its run — has its child stopped, as Airflow's task heartbeat does. However many tries a worker runs at once,
beating them costs it one thread and one connection, closed whenever it runs none.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from functools import reduce
from operator import or_

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from scheduler.models import TaskInstance
from scheduler.states import TIState

log = logging.getLogger(__name__)


class Heartbeat:
    """One try, beaten while the block runs (`with Heartbeat(ti) as beat:`)."""

    def __init__(self, ti: TaskInstance) -> None:
        self.ti_id, self.try_number = ti.pk, ti.try_number
        self.child_pid: int | None = None
        self.pid_written = False

    def child_started(self, pid: int) -> None:
        """The sandbox started the try's child: its pid, to show in the row and to stop the child."""
        self.child_pid = pid

    def __enter__(self) -> Heartbeat:
        _beater().add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _beater().remove(self)


def running_children() -> list[int]:
    """The sandboxed children of the tries this process is running (the rows may not show them yet)."""
    beater = _instance  # none yet: this process has run no try, and starts no thread to say so
    return [] if beater is None else [pid for beat in beater.tries() if (pid := beat.child_pid) is not None]


class _Beater:
    def __init__(self) -> None:
        self._tries: set[Heartbeat] = set()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def add(self, beat: Heartbeat) -> None:
        with self._changed:
            if not self._tries:  # the interval may have changed while the thread slept without tries
                self._changed.notify()
            self._tries.add(beat)

    def remove(self, beat: Heartbeat) -> None:
        with self._changed:
            self._tries.discard(beat)
            if not self._tries:
                self._changed.notify()  # to close the connection now

    def tries(self) -> list[Heartbeat]:
        with self._changed:
            return list(self._tries)

    def _run(self) -> None:
        next_beat = time.monotonic() + settings.TRADEWIND_HEARTBEAT_SECONDS
        while True:  # never ends: without it every try of this process would be failed as a zombie
            # Woken early when the first try is added (the interval may have changed) or the last one removed:
            # not for every try, which would wake this thread twice per task of a busy worker.
            with self._changed:
                self._changed.wait(max(0.0, next_beat - time.monotonic()))
                tries = list(self._tries)
            now = time.monotonic()
            if not tries:
                _close_connection()  # a process running no try holds no connection for heartbeats
            if now < next_beat:
                next_beat = min(next_beat, now + settings.TRADEWIND_HEARTBEAT_SECONDS)
                continue
            next_beat = now + settings.TRADEWIND_HEARTBEAT_SECONDS
            if not tries:
                continue
            try:
                self._beat(tries)
            except Exception:
                log.exception("task heartbeat failed")
                _close_connection()  # the next beat connects afresh

    def _beat(self, tries: list[Heartbeat]) -> None:
        ours = TaskInstance.objects.filter(
            reduce(or_, (Q(pk=beat.ti_id, try_number=beat.try_number) for beat in tries)),
            state=TIState.RUNNING,
        )
        ours.update(heartbeat_at=timezone.now())
        running = set(ours.values_list("pk", flat=True))
        for beat in tries:
            child_pid = beat.child_pid
            if child_pid is None:
                continue
            if beat.ti_id not in running:
                self._stop(beat, child_pid)
            elif not beat.pid_written:
                ours.filter(pk=beat.ti_id).update(pid=child_pid)
                beat.pid_written = True

    def _stop(self, beat: Heartbeat, child_pid: int) -> None:
        from workers import sandbox

        with self._changed:
            if beat not in self._tries:  # the try ended meanwhile: its pid is nobody's to stop
                return
            self._tries.discard(beat)
        log.info("the try is no longer running; stopping its task", extra={"ti_id": beat.ti_id})
        sandbox.terminate(child_pid)


def _close_connection() -> None:
    try:
        connection.close()
    except Exception:
        log.warning("could not close the heartbeat's database connection", exc_info=True)


_instance: _Beater | None = None
_instance_lock = threading.Lock()


def _beater() -> _Beater:
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = _Beater()
        return _instance


def _after_fork_in_child() -> None:
    """A forked copy of this process has none of its threads: it starts its own beater when it needs one."""
    global _instance, _instance_lock
    _instance, _instance_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
