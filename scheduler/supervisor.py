"""Scheduler processes: a supervisor holding tenant leases and one child process per tenant (or group).

`manage.py scheduler` runs a Supervisor. Several supervisors may run at once (HA): each tenant is scheduled
by whichever holds its lease; when a supervisor dies its children die with it, its leases expire and another
supervisor takes the tenants over. A tenant process is `manage.py scheduler --run-tenants <ids>`: a crashed
one is restarted with backoff and does not affect other tenants. `standalone` runs the same loop in a thread
for every tenant (`EmbeddedScheduler`).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from scheduler import wakeup

if TYPE_CHECKING:
    from scheduler.loop import PassResult, TenantScheduler

logger = logging.getLogger(__name__)

# Embedded mode re-reads the tenant list this often (and whenever an unknown tenant is woken).
TENANT_REFRESH_S = 5.0
# Closing obsolete or broken database connections between passes: often enough to recover from a database
# restart, rarely enough to stay off the critical path.
CONNECTION_CHECK_S = 30.0
# A tenant process restarted after crashing waits 2^failures seconds, at most this long.
MAX_BACKOFF_S = 60.0
# Under a stream of events (tasks finishing faster than passes end) a tenant's next pass waits this many
# times as long as its last pass took: each pass then takes in many events, and the scheduler spends at most
# half its time on one tenant instead of re-reading a big run for every event. An event that finds the loop
# idle (a chain's next task) is served at once.
PASS_REST_RATIO = 1.0
# ... and this many times after a pass that queued nothing, or queued onto a backlog (loop.Queued): the events
# were finishes that made nothing ready (the middle of a wide fan-out), or the workers have plenty queued
# until the next pass, so it can wait longer. A pass over a 500-task run costs about 18 ms; resting once as
# long made the scheduler's CPU per fanout_500 task half as much again.
IDLE_PASS_REST_RATIO = 3.0
# A pass deferred for its rest waits only while events keep coming: once none has come for this long the
# stream has paused (the tasks left are running), and resting on would only delay what the last ones made
# ready (bash_50's run ended 130-150 ms after its last task: a 3 x 50 ms rest begun while 20 were queued).
# Nor does it wait once every try the previous pass left queued or running has ended (wake-ups count them):
# nothing more is coming.
STREAM_QUIET_S = 0.02
# Woken this soon after starting to wait, the loop was not idle: the events came while it was busy.
STREAM_GAP_S = 0.002
# A tenant process that ran this long before dying is not counted as crash-looping.
HEALTHY_RUN_S = 60.0


def make_owner_id() -> str:
    """A scheduler's identity in leases: "<host>:<pid>:<random>"."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _active_tenant_ids() -> list[int]:
    from tenants.models import Tenant

    return list(
        Tenant.objects.filter(status=Tenant.Status.ACTIVE).order_by("pk").values_list("pk", flat=True)
    )


def schedule_tenants(tenant_ids: list[int], owner: str | None, stop: threading.Event, executor=None) -> None:
    """Run scheduling passes for these tenants until `stop` is set (or, with an owner, a lease is lost).

    A tenant gets a pass when it is woken (an event) or its next timed event is due; a tenant that found the
    executor full gets one whenever anything wakes the loop (a slot may have freed). The tenant served least
    recently goes first, so tenants sharing an executor take turns at its free slots. `tenant_ids` empty
    means every active tenant (embedded mode). A pass that fails is logged and retried a second later; it
    does not stop the other tenants.
    """
    from scheduler import leases
    from scheduler.loop import TenantScheduler
    from workers.executors import get_executor

    executor = executor or get_executor()
    wakeup.start_listener()
    if owner:  # listening: a wake-up sent from now on is heard
        leases.mark_serving(tenant_ids, owner)
    embedded = not tenant_ids
    ids = list(tenant_ids)
    schedulers: dict[int, TenantScheduler] = {}
    due: dict[int, float] = {}  # tenant -> monotonic time of its next timed pass
    saturated: set[int] = set()  # tenants that left ready work because the executor was full
    served_at: dict[int, float] = {}  # tenant -> monotonic time its pass last queued something
    woken: dict[int, int] = {}  # tenant -> tries ended, as the last wait returned them
    streaming = False  # the events in `woken` arrived while the loop was busy
    deferred: set[int] = set()  # woken tenants whose pass waits for their rest after the previous one
    rest_until: dict[int, float] = {}  # tenant -> monotonic time its next pass may start
    heard_at: dict[int, float] = {}  # tenant -> monotonic time of its last event
    tries_ended: dict[int, int] = {}  # tenant -> tries ended since its last pass began
    left_active: dict[int, int] = {}  # tenant -> tries its last pass left queued or running (0: unknown)
    ids_read_at = lease_checked_at = connections_checked_at = -math.inf
    lease_check_s = min(1.0, settings.TRADEWIND_LEASE_SECONDS / 4)
    try:
        while not stop.is_set():
            now = time.monotonic()
            if embedded and (now - ids_read_at >= TENANT_REFRESH_S or woken.keys() - set(ids)):
                ids, ids_read_at = _active_tenant_ids(), now
            if owner and now - lease_checked_at >= lease_check_s:
                if leases.held(ids, owner) != ids:
                    logger.warning("lost a tenant lease; stopping", extra={"tenants": ids, "owner": owner})
                    return
                lease_checked_at = now
            for tenant_id in sorted(ids, key=lambda t: served_at.get(t, -math.inf)):
                if stop.is_set():
                    break
                wanted = tenant_id in woken or tenant_id in deferred or tenant_id in saturated
                if not wanted and due.get(tenant_id, 0) > now:
                    continue
                moment = time.monotonic()
                resting = (
                    rest_until.get(tenant_id, 0) > moment
                    and moment - heard_at.get(tenant_id, -math.inf) < STREAM_QUIET_S
                    and not 0 < left_active.get(tenant_id, 0) <= tries_ended.get(tenant_id, 0)
                )
                if resting and (streaming or tenant_id in deferred):
                    deferred.add(tenant_id)
                    continue
                deferred.discard(tenant_id)
                scheduler = schedulers.get(tenant_id) or schedulers.setdefault(
                    tenant_id, TenantScheduler(tenant_id, executor)
                )
                started = time.monotonic()
                tries_ended[tenant_id] = 0
                due[tenant_id], result = _run_pass(scheduler, saturated, served_at)
                ended = time.monotonic()
                rest_until[tenant_id] = ended + (ended - started) * _rest_ratio(result)
                left_active[tenant_id] = result.tasks_active if result is not None else 0
            if time.monotonic() - connections_checked_at >= CONNECTION_CHECK_S:
                close_old_connections()
                connections_checked_at = time.monotonic()
            next_due = min(
                [due[t] for t in ids if t in due]
                + [
                    min(rest_until[t], heard_at.get(t, -math.inf) + STREAM_QUIET_S)
                    for t in deferred
                    if t in ids
                ],
                default=math.inf,
            )
            timeout = min(max(next_due - time.monotonic(), 0.0), settings.TRADEWIND_SCHEDULER_MAX_SLEEP)
            waiting_since = time.monotonic()
            woken = wakeup.wait(None if embedded else ids, timeout, stop)
            streaming = bool(woken) and time.monotonic() - waiting_since < STREAM_GAP_S
            heard_at.update(dict.fromkeys(woken, time.monotonic()))
            for tenant_id, count in woken.items():
                tries_ended[tenant_id] = tries_ended.get(tenant_id, 0) + count
    finally:
        executor.shutdown(wait=False)
        connection.close()


def _rest_ratio(result: PassResult | None) -> float:
    """How long the tenant's next pass waits under a stream of events, in multiples of this pass's time."""
    if result is None or not result.tasks_queued or result.backlog:
        return IDLE_PASS_REST_RATIO
    return PASS_REST_RATIO


def _run_pass(
    scheduler: TenantScheduler, saturated: set[int], served_at: dict[int, float]
) -> tuple[float, PassResult | None]:
    """One pass of one tenant; returns the monotonic time its next timed pass is due, and what it did (None:
    it failed)."""
    tenant_id = scheduler.tenant_id
    try:
        result = scheduler.run_pass()
    except Exception:
        logger.exception("a scheduling pass failed; retrying in 1 s", extra={"tenant_id": tenant_id})
        close_old_connections()
        saturated.discard(tenant_id)
        return time.monotonic() + 1.0, None
    if result.tasks_queued:
        served_at[tenant_id] = time.monotonic()
    if result.executor_full:
        saturated.add(tenant_id)
    else:
        saturated.discard(tenant_id)
    wait_s = (result.next_wake - timezone.now()).total_seconds() if result.next_wake else math.inf
    return time.monotonic() + max(wait_s, 0.0), result


def run_tenant_process(tenant_ids: list[int], owner: str, parent_pid: int) -> None:
    """Body of a tenant scheduler process (`manage.py scheduler --run-tenants`): schedule the tenants while
    its supervisor lives and holds their leases."""
    _die_with_parent(parent_pid)
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        stop.set()
        wakeup.interrupt()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    logger.info("tenant scheduler process started", extra={"tenants": tenant_ids, "owner": owner})
    schedule_tenants(tenant_ids, owner, stop)


def _die_with_parent(parent_pid: int) -> None:
    """A tenant process must not outlive its supervisor (it would schedule without a renewed lease)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() != parent_pid:  # the supervisor died before the line above took effect
        sys.exit(0)


@dataclass
class _Child:
    tenant_ids: tuple[int, ...]
    process: subprocess.Popen | None = None
    failures: int = 0
    restart_at: float = 0.0
    started_at: float = 0.0


class Supervisor:
    """Holds tenant leases and keeps one scheduler process running per tenant group."""

    def __init__(self, tenants_per_process: int = 1, max_tenants: int | None = None) -> None:
        self.owner = make_owner_id()
        self.tenants_per_process = max(1, tenants_per_process)
        self.max_tenants = max_tenants
        self.children: dict[tuple[int, ...], _Child] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        """Until `stop` is set: renew and take leases every third of the lease time, and keep the tenant
        processes running (a dead one is noticed within half a second)."""
        renew_every = settings.TRADEWIND_LEASE_SECONDS / 3
        renewed_at = -math.inf
        logger.info("scheduler supervisor started", extra={"owner": self.owner})
        try:
            while not self.stop.is_set():
                if time.monotonic() - renewed_at >= renew_every:
                    renewed_at = time.monotonic()
                    try:
                        self.reconcile()
                    except Exception:  # the database is away: children stop once their leases lapse
                        logger.exception("could not renew scheduler leases")
                        close_old_connections()
                self.restart_dead()
                self.stop.wait(min(0.5, renew_every))
        finally:
            self.shutdown()

    def reconcile(self) -> None:
        """Renew or take leases; start and stop tenant processes to match."""
        from scheduler import leases

        candidates = _active_tenant_ids()
        held = leases.acquire_many(candidates, self.owner, limit=self.max_tenants)
        released = [t for t in leases.held(list(self._served()), self.owner) if t not in candidates]
        if released:  # suspended or deleted tenants
            leases.release(self.owner, released)
        groups = {
            tuple(held[i : i + self.tenants_per_process])
            for i in range(0, len(held), self.tenants_per_process)
        }
        for key in list(self.children):
            if key not in groups:
                self._stop_child(self.children.pop(key))
        for key in groups:
            self.children.setdefault(key, _Child(tenant_ids=key))
        close_old_connections()

    def _served(self) -> set[int]:
        return {tenant_id for key in self.children for tenant_id in key}

    def restart_dead(self) -> None:
        """Start tenant processes not running yet; restart dead ones after their backoff."""
        from scheduler import leases

        now = time.monotonic()
        for key, child in self.children.items():
            if child.process is not None and child.process.poll() is None:
                continue
            if child.process is not None:  # it died: back off before the restart
                crashed_fast = now - child.started_at < HEALTHY_RUN_S
                child.failures = child.failures + 1 if crashed_fast else 0
                child.restart_at = now + min(MAX_BACKOFF_S, 2.0**child.failures)
                logger.warning(
                    "tenant scheduler process exited; restarting with backoff",
                    extra={
                        "tenants": key,
                        "exitcode": child.process.returncode,
                        "failures": child.failures,
                        "restart_in_s": round(child.restart_at - now, 1),
                    },
                )
                child.process = None
                try:
                    leases.mark_serving(list(key), self.owner, serving=False)
                except Exception:  # the database is away: the mark is only informative, keep supervising
                    logger.warning("could not mark the tenants unserved", exc_info=True)
                    close_old_connections()
            if now >= child.restart_at:
                child.process = self._spawn(key)
                child.started_at = now

    def _spawn(self, tenant_ids: tuple[int, ...]) -> subprocess.Popen:
        manage = Path(settings.BASE_DIR) / "manage.py"
        command = [
            sys.executable,
            str(manage),
            "scheduler",
            "--run-tenants",
            ",".join(str(t) for t in tenant_ids),
            "--owner",
            self.owner,
            "--parent-pid",
            str(os.getpid()),
        ]
        return subprocess.Popen(command, cwd=settings.BASE_DIR)

    def _stop_child(self, child: _Child) -> None:
        if child.process is None or child.process.poll() is not None:
            return
        child.process.terminate()
        try:
            child.process.wait(10)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()

    def shutdown(self) -> None:
        """Stop every tenant process and give the leases up, so another supervisor takes over at once."""
        from scheduler import leases

        for child in self.children.values():
            if child.process is not None and child.process.poll() is None:
                child.process.terminate()
        for child in self.children.values():
            self._stop_child(child)
        self.children.clear()
        try:
            leases.release(self.owner)
        except Exception:  # they expire on their own
            logger.exception("could not release scheduler leases")
        logger.info("scheduler supervisor stopped", extra={"owner": self.owner})


class EmbeddedScheduler:
    """The scheduler of `standalone`: every tenant, one thread, the local executor."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> None:
        """Start scheduling every tenant in the background."""
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                schedule_tenants([], None, self.stop)
            except Exception:  # keep the embedded scheduler alive through a bad pass
                logger.exception("embedded scheduler failed; restarting in 1 s")
                self.stop.wait(1)

    def shutdown(self) -> None:
        """Stop scheduling and wait for the loop to end."""
        self.stop.set()
        wakeup.interrupt()
        self.thread.join(settings.TRADEWIND_SCHEDULER_MAX_SLEEP + 5)
