"""Scheduler processes: a supervisor holding tenant leases and one child process per tenant (or group).

`manage.py scheduler` runs a Supervisor. Several supervisors may run at once (HA): each tenant is scheduled
by whichever holds its lease; when a supervisor dies its leases expire and another takes the tenants over.
A crashed tenant process is restarted with backoff and does not affect other tenants. `standalone` runs
the same loop in a thread for every tenant (`EmbeddedScheduler`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import close_old_connections, connection

from scheduler import leases, wakeup
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def make_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _active_tenant_ids() -> list[int]:
    return list(
        Tenant.objects.filter(status=Tenant.Status.ACTIVE).order_by("pk").values_list("pk", flat=True)
    )


def schedule_tenants(tenant_ids: list[int], owner: str | None, stop: threading.Event, executor=None) -> None:
    """Run scheduling passes for these tenants until `stop` is set (or, with an owner, a lease is lost).

    `tenant_ids` empty means every active tenant, re-read each pass (embedded mode).
    """
    from django.utils import timezone

    from scheduler.loop import TenantScheduler
    from workers.executors import get_executor

    executor = executor or get_executor()
    wakeup.start_listener()
    schedulers: dict[int, TenantScheduler] = {}
    try:
        while not stop.is_set():
            ids = tenant_ids or _active_tenant_ids()
            next_wake = None
            for tenant_id in ids:
                if owner and not leases.holds(tenant_id, owner):
                    logger.warning("lost the lease of a tenant; stopping", extra={"tenant_id": tenant_id})
                    return
                scheduler = schedulers.setdefault(tenant_id, TenantScheduler(tenant_id, executor))
                result = scheduler.run_pass()
                if result.next_wake and (next_wake is None or result.next_wake < next_wake):
                    next_wake = result.next_wake
            close_old_connections()
            max_sleep = settings.TRADEWIND_SCHEDULER_MAX_SLEEP
            timeout = max_sleep if next_wake is None else (next_wake - timezone.now()).total_seconds()
            wakeup.wait(ids, min(max(timeout, 0.0), max_sleep))
    finally:
        executor.shutdown(wait=False)
        connection.close()


def _tenant_process_main(tenant_ids: list[int], owner: str) -> None:
    """Entry point of a spawned tenant scheduler process."""
    import django

    _die_with_parent()
    django.setup()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    schedule_tenants(tenant_ids, owner, stop)


def _die_with_parent() -> None:
    """A tenant process must not outlive its supervisor (it would schedule without a renewed lease)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class _Child:
    tenant_ids: tuple[int, ...]
    process: multiprocessing.Process | None = None
    failures: int = 0
    restart_at: float = 0.0
    started_at: float = field(default_factory=time.monotonic)


class Supervisor:
    """Holds tenant leases and keeps one scheduler process running per tenant group."""

    def __init__(self, tenants_per_process: int = 1, max_tenants: int | None = None) -> None:
        self.owner = make_owner_id()
        self.tenants_per_process = max(1, tenants_per_process)
        self.max_tenants = max_tenants
        self.children: dict[tuple[int, ...], _Child] = {}
        self.stop = threading.Event()
        self._spawn = multiprocessing.get_context("spawn")

    def run(self) -> None:
        interval = settings.TRADEWIND_LEASE_SECONDS / 3
        logger.info("scheduler supervisor started", extra={"owner": self.owner})
        try:
            while not self.stop.is_set():
                self.reconcile()
                self.stop.wait(interval)
        finally:
            self.shutdown()

    def reconcile(self) -> None:
        """Renew or take leases, start and stop tenant processes to match, restart crashed ones."""
        candidates = _active_tenant_ids()
        held = [tenant_id for tenant_id in candidates if leases.acquire(tenant_id, self.owner)]
        if self.max_tenants is not None:
            extra, held = held[self.max_tenants :], held[: self.max_tenants]
            leases.release(self.owner, extra)
        groups = {
            tuple(held[i : i + self.tenants_per_process])
            for i in range(0, len(held), self.tenants_per_process)
        }
        for key in list(self.children):
            if key not in groups:
                self._stop_child(self.children.pop(key))
        now = time.monotonic()
        for key in groups:
            child = self.children.setdefault(key, _Child(tenant_ids=key))
            if child.process is not None and child.process.is_alive():
                continue
            if child.process is not None:  # it died: back off before the restart
                child.failures = 0 if now - child.started_at > 60 else child.failures + 1
                child.restart_at = now + min(60.0, 2.0**child.failures)
                logger.warning(
                    "tenant scheduler process exited; restarting with backoff",
                    extra={"tenants": key, "exitcode": child.process.exitcode, "failures": child.failures},
                )
                child.process = None
            if now >= child.restart_at:
                child.process = self._spawn.Process(
                    target=_tenant_process_main,
                    args=(list(key), self.owner),
                    name=f"scheduler-{key}",
                    daemon=True,
                )
                child.process.start()
                child.started_at = now
        close_old_connections()

    def _stop_child(self, child: _Child) -> None:
        if child.process is not None and child.process.is_alive():
            child.process.terminate()
            child.process.join(10)
            if child.process.is_alive():
                child.process.kill()

    def shutdown(self) -> None:
        for child in self.children.values():
            self._stop_child(child)
        self.children.clear()
        leases.release(self.owner)
        logger.info("scheduler supervisor stopped", extra={"owner": self.owner})


class EmbeddedScheduler:
    """The scheduler of `standalone`: every tenant, one thread, the local executor."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                schedule_tenants([], None, self.stop)
            except Exception:  # keep the embedded scheduler alive through a bad pass
                logger.exception("embedded scheduler pass failed; restarting in 1 s")
                self.stop.wait(1)

    def shutdown(self) -> None:
        self.stop.set()  # the loop sees it within TRADEWIND_SCHEDULER_MAX_SLEEP
        self.thread.join(settings.TRADEWIND_SCHEDULER_MAX_SLEEP + 5)
