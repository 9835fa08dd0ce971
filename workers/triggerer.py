"""The triggerer: runs the triggers of deferred task instances, so that waiting tasks hold no worker slot.

A `Triggerer` claims deferred task instances of its tenants — a claim with expiry on the task instance
(`trigger_claimed_by`, `trigger_claim_expires_at`, database time), renewed while it runs them, so several
triggerers can run at once and the triggers of one that dies are claimed by another once its claims expire.
Triggers are tenant code: they run in sandboxed `TriggerHost`s, one long-lived child per tenant and bundle
version running many triggers on one asyncio loop. When a trigger fires, fails or its deferral times out
(`trigger_timeout_at`), the task instance is resumed through `services.resume_deferred`, fenced on the claim;
the event that publishes wakes the scheduler, which queues the task to continue in its next_method.

A host that dies takes its triggers with it: they are started again, split between two new hosts, until a
trigger that kills every host it is in is alone and fails its task with the reason. A host whose loop stops
answering pings (a trigger blocking it) is killed and treated the same way. It wakes when a task instance is deferred: in-process through scheduler.events,
across processes through the scheduler's Redis wake-up channel; a poll every TRADEWIND_TRIGGERER_POLL_SECONDS
(default 5) covers the rest, and the next trigger timeout is waited for exactly.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Min, Q
from django.db.models.functions import Now
from django.utils import timezone

from scheduler.models import TaskInstance
from scheduler.states import TIState
from tenants.models import Tenant
from tradewind.sdk.execution import TRIGGER_TIMEOUT_REASON

if TYPE_CHECKING:
    from tradewind.secrets.masking import Masker
    from workers.rpc import TaskRpcHandler
    from workers.sandbox import Limits, TriggerHost

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 1000
HOST_STALL_S = 60.0  # a host whose loop does not answer a ping this long is killed
HOST_IDLE_S = 60.0  # a host without triggers this long is stopped
MIN_PASS_INTERVAL_S = 0.05
TRIGGER_OUTPUT_BYTES = 10 * 1024 * 1024  # what one trigger may write to its task's log
TIMEOUT_BATCH = 500

# (tenant id, bundle root, group): group 0 is the shared host; the triggers of a host that died are split
# into two new groups, so a trigger that kills its host ends up alone after a few deaths, at a bounded cost
# in processes however many triggers a fault of the platform took down.
HostKey = tuple[int, str, int]


def make_owner_id() -> str:
    """This triggerer's identity in claims: "<host>:<pid>:<random>"."""
    from scheduler.supervisor import make_owner_id as scheduler_owner_id

    return f"triggerer:{scheduler_owner_id()}"


def _fingerprint(try_number: int, trigger: Any) -> str:
    """Which deferral a trigger belongs to: the try and the trigger (a resumed task that defers again in the
    same try has another trigger, or at least another moment or timeout)."""
    data = json.dumps([try_number, trigger], sort_keys=True, default=str)
    return hashlib.sha1(data.encode()).hexdigest()


def _claimable() -> Q:
    return Q(trigger_claimed_by="") | Q(trigger_claim_expires_at__lt=Now())


@dataclass
class _Trigger:
    """One trigger running in a host for one deferral of one task instance."""

    key: str
    ti: TaskInstance
    fingerprint: str
    host_key: HostKey
    output_bytes: int = 0
    handler: TaskRpcHandler | None = None


@dataclass
class _Host:
    """A TriggerHost, the thread running it and what this triggerer knows about it."""

    key: HostKey
    host: TriggerHost
    masker: Masker
    thread: threading.Thread | None = None
    triggers: set[str] = field(default_factory=set)
    reason: str | None = None
    stall_reason: str | None = None
    ping_n: int = 0
    pinged_at: float = field(default_factory=time.monotonic)
    idle_since: float = field(default_factory=time.monotonic)


class Triggerer:
    """Claims and runs the triggers of deferred task instances of its tenants (all active tenants when
    `tenant_ids` is None), at most `capacity` at a time, until `run(stop)` is told to stop."""

    def __init__(
        self,
        *,
        tenant_ids: list[int] | None = None,
        capacity: int = DEFAULT_CAPACITY,
        owner: str | None = None,
        poll_s: float | None = None,
        stall_s: float = HOST_STALL_S,
        idle_s: float = HOST_IDLE_S,
        limits: Limits | None = None,
    ) -> None:
        self.tenant_ids = list(tenant_ids) if tenant_ids else None
        self.capacity = max(1, capacity)
        self.owner = owner or make_owner_id()
        self.poll_s = poll_s if poll_s is not None else settings.TRADEWIND_TRIGGERER_POLL_SECONDS
        self.stall_s = stall_s
        self.idle_s = idle_s
        self.limits = limits
        self._hosts: dict[HostKey, _Host] = {}
        self._retired: list[_Host] = []
        self._triggers: dict[str, _Trigger] = {}
        self._by_ti: dict[int, _Trigger] = {}
        self._watched: set[tuple] = set()  # event identities of the task instances whose triggers run here
        self._groups: dict[int, int] = {}  # task instance -> host group, after a host of theirs died
        self._group_ids = itertools.count(1)
        self._lock = threading.Lock()
        self._results: queue.SimpleQueue[tuple[_Host, str, dict]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._seq = itertools.count(1)
        self._renewed_at = 0.0
        self._listening = threading.Event()

    # --- the loop ---------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Run passes until `stop` is set (call `wake()` after setting it), then stop the hosts and give the
        claims up so another triggerer takes the triggers over at once."""
        from scheduler import events

        unsubscribe = events.subscribe(self._on_event)
        self._start_listener(stop)
        log.info("triggerer started", extra={"owner": self.owner, "capacity": self.capacity})
        try:
            while not stop.is_set():
                started = time.monotonic()
                self._wake.clear()
                try:
                    wait = self.run_pass()
                except Exception:  # the database went away, ...: keep serving, try again soon
                    log.exception("triggerer pass failed", extra={"owner": self.owner})
                    wait = 1.0
                close_old_connections()
                self._wake.wait(max(wait, 0.0))
                stop.wait(max(0.0, MIN_PASS_INTERVAL_S - (time.monotonic() - started)))
        finally:
            unsubscribe()
            self.shutdown()

    def wake(self) -> None:
        """Make the loop run a pass now (or notice that it was told to stop)."""
        self._wake.set()

    def run_pass(self) -> float:
        """One pass: take finished triggers and dead hosts, renew claims, fail timed-out deferrals, claim
        more, start and cancel triggers to match the claims. Returns how long the loop may sleep."""
        tenants = self._tenants()
        self._take_results()
        self._take_dead_hosts()
        if time.monotonic() - self._renewed_at >= self._ttl().total_seconds() / 3:
            self._renew()
        next_timeout = self._fail_timed_out(tenants)
        self._claim(tenants)
        self._reconcile()
        self._tend_hosts()
        wait = min(self.poll_s, self._ttl().total_seconds() / 3, self.stall_s / 4)
        if next_timeout is not None:
            wait = min(wait, (next_timeout - timezone.now()).total_seconds() + 0.01)
        return wait

    def shutdown(self) -> None:
        """Stop every host (their triggers' cleanup runs) and release this triggerer's claims."""
        hosts = list(self._hosts.values()) + self._retired
        for host in hosts:
            host.host.stop()
        for host in hosts:
            if host.thread is not None:
                host.thread.join(host.host.limits.kill_grace_s + 5)
        self._hosts.clear()
        self._retired.clear()
        with self._lock:
            self._triggers.clear()
            self._by_ti.clear()
            self._watched.clear()
        try:
            TaskInstance.objects.filter(trigger_claimed_by=self.owner).update(
                trigger_claimed_by="", trigger_claim_expires_at=None
            )
        except Exception:  # the claims expire by themselves
            log.warning("could not release trigger claims", exc_info=True, extra={"owner": self.owner})
        finally:
            connection.close()
        log.info("triggerer stopped", extra={"owner": self.owner})

    # --- claims ----------------------------------------------------------------------------------------

    def _ttl(self) -> timedelta:
        return timedelta(seconds=float(settings.TRADEWIND_LEASE_SECONDS))

    def _tenants(self) -> list[int]:
        active = Tenant.objects.filter(status=Tenant.Status.ACTIVE)
        if self.tenant_ids is not None:
            active = active.filter(pk__in=self.tenant_ids)
        return list(active.values_list("pk", flat=True))

    def _renew(self) -> None:
        mine = TaskInstance.objects.filter(trigger_claimed_by=self.owner)
        mine.filter(state=TIState.DEFERRED).update(trigger_claim_expires_at=Now() + self._ttl())
        # A claimed task instance that someone else moved on (cleared, marked) gives its claim up.
        mine.exclude(state=TIState.DEFERRED).update(trigger_claimed_by="", trigger_claim_expires_at=None)
        self._renewed_at = time.monotonic()

    def _claim(self, tenants: list[int]) -> None:
        deferred = TaskInstance.objects.filter(tenant_id__in=tenants, state=TIState.DEFERRED)
        free = self.capacity - deferred.filter(trigger_claimed_by=self.owner).count()
        if free <= 0 or not tenants:
            return
        candidates = list(deferred.filter(_claimable()).order_by("pk").values_list("pk", flat=True)[:free])
        if candidates:
            deferred.filter(_claimable(), pk__in=candidates).update(
                trigger_claimed_by=self.owner, trigger_claim_expires_at=Now() + self._ttl()
            )

    def _fail_timed_out(self, tenants: list[int]) -> Any:
        """Resume deferrals past trigger_timeout_at with Airflow's timeout error (the task fails in the sandbox,
        its retries apply); returns when the next one of these tenants times out."""
        now = timezone.now()
        deferred = TaskInstance.objects.filter(tenant_id__in=tenants, state=TIState.DEFERRED).filter(
            _claimable() | Q(trigger_claimed_by=self.owner)
        )
        due = list(deferred.filter(trigger_timeout_at__lte=now).values_list("pk", flat=True)[:TIMEOUT_BATCH])
        for ti_id in due:
            running = self._by_ti.get(ti_id)
            if running is not None:
                self._cancel(running)
            self._resume(ti_id, None, error=TRIGGER_TIMEOUT_REASON, note="trigger timed out")
        if len(due) == TIMEOUT_BATCH:
            return now
        return deferred.filter(trigger_timeout_at__gt=now).aggregate(at=Min("trigger_timeout_at"))["at"]

    def _resume(
        self,
        ti_id: int,
        trigger: _Trigger | None,
        *,
        event: Any = None,
        error: str | None = None,
        note: str,
        detail: str | None = None,
        masker: Masker | None = None,
    ) -> bool:
        """Resume the deferred task instance if this triggerer may: its claim holds for this very deferral
        (or, for a timeout, nobody else holds a claim). The claim is given up with it."""
        from scheduler import services

        rows = TaskInstance.objects.select_for_update(of=("self",)).select_related("dag_run__dag")
        rows = rows.filter(pk=ti_id, state=TIState.DEFERRED)
        if trigger is None:
            rows = rows.filter(_claimable() | Q(trigger_claimed_by=self.owner))
        else:
            rows = rows.filter(trigger_claimed_by=self.owner)
        with transaction.atomic():
            ti = rows.first()
            if ti is None:
                return False
            if trigger is not None and _fingerprint(ti.try_number, ti.trigger) != trigger.fingerprint:
                return False
            services.resume_deferred(ti, event=event, error=error)
            TaskInstance.objects.filter(pk=ti_id).update(trigger_claimed_by="", trigger_claim_expires_at=None)
        self._groups.pop(ti_id, None)
        lines = [f"[tradewind] {note}" + ("; the task resumes" if error is None else "")]
        if detail:
            lines.append(detail)
        self._write_log(ti, "\n".join(lines) + "\n", masker)
        return True

    # --- triggers --------------------------------------------------------------------------------------

    def _reconcile(self) -> None:
        """Run exactly the triggers of the deferrals this triggerer holds claims on."""
        mine = {
            pk: _fingerprint(try_number, trigger)
            for pk, try_number, trigger in TaskInstance.objects.filter(
                trigger_claimed_by=self.owner, state=TIState.DEFERRED
            ).values_list("pk", "try_number", "trigger")
        }
        for ti_id, running in list(self._by_ti.items()):
            if mine.get(ti_id) != running.fingerprint:
                self._cancel(running)
        self._groups = {ti_id: group for ti_id, group in self._groups.items() if ti_id in mine}
        new = [pk for pk in mine if pk not in self._by_ti]
        if not new:
            return
        tis = TaskInstance.objects.filter(
            pk__in=new, trigger_claimed_by=self.owner, state=TIState.DEFERRED
        ).select_related("dag_run__dag", "dag_run__dag_version__bundle_version")
        for ti in tis:
            try:
                self._start(ti)
            except Exception:  # a fault of the platform: this one is tried again next pass, the others go on
                log.exception("could not start a trigger", extra={"ti_id": ti.pk, "owner": self.owner})

    def _start(self, ti: TaskInstance) -> None:
        from scheduler.bundles import bundle_root

        trigger = ti.trigger if isinstance(ti.trigger, dict) else {}
        classpath = trigger.get("classpath")
        if not isinstance(classpath, str) or not classpath:
            self._resume(ti.pk, None, error="the deferral has no trigger to run", note="no trigger to run")
            return
        version = ti.dag_run.dag_version
        root = bundle_root(version.bundle_version)
        file = version.serialized.get("fileloc") or ti.dag_run.dag.fileloc
        host_key: HostKey = (ti.tenant_id, str(root), self._groups.get(ti.pk, 0))
        host = self._hosts.get(host_key) or self._start_host(host_key, root)
        running = _Trigger(
            key=f"{ti.pk}.{next(self._seq)}",
            ti=ti,
            fingerprint=_fingerprint(ti.try_number, ti.trigger),
            host_key=host_key,
        )
        with self._lock:
            self._triggers[running.key] = running
            self._by_ti[ti.pk] = running
            self._watched.add(_identity(ti))
        host.triggers.add(running.key)
        self._write_log(
            ti, f"[tradewind] deferred: trigger {classpath} runs in triggerer {self.owner}\n", None
        )
        host.host.add(running.key, classpath, trigger.get("kwargs") or {}, file=file)

    def _cancel(self, running: _Trigger) -> None:
        self._forget(running)
        host = self._hosts.get(running.host_key)
        if host is not None:
            host.host.cancel(running.key)

    def _forget(self, running: _Trigger) -> None:
        with self._lock:
            self._triggers.pop(running.key, None)
            if self._by_ti.get(running.ti.pk) is running:
                del self._by_ti[running.ti.pk]
                self._watched.discard(_identity(running.ti))
        host = self._hosts.get(running.host_key)
        if host is not None:
            host.triggers.discard(running.key)
            if not host.triggers:
                host.idle_since = time.monotonic()

    def _take_results(self) -> None:
        """Resume the task instances whose triggers reported."""
        while True:
            try:
                host, key, result = self._results.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                running = self._triggers.get(key)
            if running is None or running.host_key != host.key:
                continue  # cancelled meanwhile, or a key this host was never given
            self._forget(running)
            if "event" in result:
                self._resume(
                    running.ti.pk, running, event=result["event"], note="trigger fired", masker=host.masker
                )
                continue
            error = host.masker.mask(str(result.get("error") or "the trigger failed"))
            traceback = result.get("traceback")
            self._resume(
                running.ti.pk,
                running,
                error=error,
                note=f"trigger failed: {error}",
                detail=host.masker.mask(traceback) if isinstance(traceback, str) and traceback else None,
                masker=host.masker,
            )

    # --- hosts -----------------------------------------------------------------------------------------

    def _start_host(self, key: HostKey, root: Path) -> _Host:
        from tradewind.secrets.masking import Masker
        from workers.sandbox import TriggerHost

        holder: list[_Host] = []
        sandbox_host = TriggerHost(
            root,
            tenant_id=key[0],
            on_result=lambda trigger_key, result: self._on_result(holder[0], trigger_key, result),
            on_output=lambda trigger_key, text: self._on_output(holder[0], trigger_key, text),
            handler=lambda trigger_key, op, kwargs: self._on_request(holder[0], trigger_key, op, kwargs),
            output=lambda data: self._on_host_output(holder[0], data),
            limits=self.limits,
        )
        host = _Host(key=key, host=sandbox_host, masker=Masker())
        holder.append(host)
        host.thread = threading.Thread(
            target=self._run_host, args=(host,), name=f"trigger-host-{key[0]}", daemon=True
        )
        self._hosts[key] = host
        host.ping_n, host.pinged_at = 1, time.monotonic()
        sandbox_host.ping(1)
        host.thread.start()
        log.info("trigger host starting", extra={"tenant_id": key[0], "root": key[1], "owner": self.owner})
        return host

    def _run_host(self, host: _Host) -> None:
        try:
            host.reason = host.host.run()
        except Exception as error:  # a fault of the platform, not of the triggers: they are restarted
            log.exception("trigger host failed", extra={"tenant_id": host.key[0]})
            host.reason = f"the trigger host failed: {type(error).__name__}: {error}"
        finally:
            connection.close()
            self._wake.set()

    def _take_dead_hosts(self) -> None:
        """Hosts that ended: a retired one is done; the triggers of one that died start again in two new
        hosts (half each), and a trigger that was alone in its host when it died fails its task with the
        reason."""
        for host in [h for h in self._retired if h.thread is not None and not h.thread.is_alive()]:
            self._retired.remove(host)
        for key, host in list(self._hosts.items()):
            if host.thread is None or host.thread.is_alive():
                continue
            del self._hosts[key]
            reason = host.stall_reason or host.reason or "the trigger host ended"
            log.warning(
                "trigger host died",
                extra={"tenant_id": key[0], "reason": reason, "triggers": len(host.triggers)},
            )
            with self._lock:
                victims = [self._triggers[k] for k in sorted(host.triggers) if k in self._triggers]
            for running in victims:
                self._forget(running)
            if len(victims) == 1:
                error = host.masker.mask(f"the trigger's process died: {reason}")
                self._resume(victims[0].ti.pk, victims[0], error=error, note=error, masker=host.masker)
                continue
            halves = (victims[: len(victims) // 2], victims[len(victims) // 2 :])
            for half in halves:  # started again by the next _reconcile
                group = next(self._group_ids)
                for running in half:
                    self._groups[running.ti.pk] = group

    def _tend_hosts(self) -> None:
        """Ping each host's loop and kill one that stopped answering; stop hosts idle for a while."""
        now = time.monotonic()
        ping_every = self.stall_s / 4
        for key, host in list(self._hosts.items()):
            if host.host.pid is None:  # not started yet (the first fork server takes a moment)
                host.pinged_at = now
            elif host.host.last_pong == host.ping_n:
                if now - host.pinged_at >= ping_every:
                    host.ping_n += 1
                    host.pinged_at = now
                    host.host.ping(host.ping_n)
            elif now - host.pinged_at > self.stall_s and host.stall_reason is None:
                host.stall_reason = (
                    f"its event loop was blocked for more than {self.stall_s:g} s (a trigger that does not "
                    "await: use asyncio.sleep and async I/O in triggers); the process was killed"
                )
                host.host.kill()
            if not host.triggers and now - host.idle_since > self.idle_s:
                del self._hosts[key]  # retired: its end is not a crash
                self._retired.append(host)
                host.host.stop()

    # --- callbacks from host threads -------------------------------------------------------------------

    def _on_result(self, host: _Host, key: str, result: dict) -> None:
        self._results.put((host, key, result))
        self._wake.set()

    def _on_output(self, host: _Host, key: str, text: str) -> None:
        with self._lock:
            running = self._triggers.get(key)
        if running is None or running.host_key != host.key or running.output_bytes > TRIGGER_OUTPUT_BYTES:
            return
        running.output_bytes += len(text)
        if running.output_bytes > TRIGGER_OUTPUT_BYTES:
            text = f"[output truncated at {TRIGGER_OUTPUT_BYTES} bytes]\n"
        self._write_log(running.ti, text, host.masker)

    def _on_host_output(self, host: _Host, data: bytes) -> None:
        text = host.masker.mask(data.decode("utf-8", "replace")).rstrip()
        if text:
            log.info("trigger host output: %s", text, extra={"tenant_id": host.key[0]})

    def _on_request(self, host: _Host, key: str | None, op: str, kwargs: dict[str, Any]) -> Any:
        """Requests of tenant code in a host: a trigger's as its task's (TaskRpcHandler); outside any trigger
        only the tenant's variables and connections."""
        from tradewind.accounts.actors import Actor
        from workers.rpc import SecretReader, TaskRpcHandler

        close_old_connections()
        with self._lock:
            running = self._triggers.get(key) if key is not None else None
        if running is not None and running.host_key == host.key:
            if running.handler is None:
                running.handler = TaskRpcHandler(ti=running.ti, masker=host.masker)
            return running.handler(op, kwargs)
        secrets = SecretReader(tenant_id=host.key[0], masker=host.masker, actor=Actor.system("triggerer"))
        if op == "get_variable":
            return secrets.get_variable(**kwargs)
        if op == "get_connection":
            return secrets.get_connection(**kwargs)
        raise RuntimeError(f"{op} is not available outside a running trigger")

    def _on_event(self, event: dict) -> None:
        """An engine event in this process: a deferral, or a change to a task whose trigger runs here."""
        if event.get("task_id") is None:
            return
        if self.tenant_ids is not None and event.get("tenant") not in self.tenant_ids:
            return
        identity = (event["tenant"], event["dag_id"], event["run_id"], event["task_id"], event["map_index"])
        if event.get("state") == TIState.DEFERRED or identity in self._watched:
            self._wake.set()

    def _start_listener(self, stop: threading.Event) -> None:
        """Across processes: the scheduler's Redis wake-up channel (published for every deferral)."""
        if settings.REDIS_URL and not self._listening.is_set():
            self._listening.set()
            threading.Thread(target=self._listen, args=(stop,), name="triggerer-wakeup", daemon=True).start()

    def _listen(self, stop: threading.Event) -> None:
        import redis

        from scheduler.wakeup import CHANNEL_PREFIX

        while not stop.is_set():
            try:
                pubsub = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5).pubsub(
                    ignore_subscribe_messages=True
                )
                pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
                while not stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    tenant_id = int(message["channel"].decode().removeprefix(CHANNEL_PREFIX))
                    if self.tenant_ids is None or tenant_id in self.tenant_ids:
                        self._wake.set()
                pubsub.close()
            except Exception:  # Redis restarted: reconnect; the poll covers the gap
                log.warning("triggerer lost Redis; reconnecting", exc_info=True)
                stop.wait(1)

    def _write_log(self, ti: TaskInstance, text: str, masker: Masker | None) -> None:
        """Append to the log of the deferred try (the task's own log, as in Airflow)."""
        from workers.logs import get_log_store

        try:
            with get_log_store().writer(ti, ti.try_number, masker=masker) as out:
                out.write(text.encode())
        except Exception:
            log.warning("could not write to a task log", exc_info=True, extra={"ti_id": ti.pk})


def _identity(ti: TaskInstance) -> tuple:
    """The task instance as engine events name it."""
    run = ti.dag_run
    return (ti.tenant_id, run.dag.dag_id, run.run_id, ti.task_id, ti.map_index)


class EmbeddedTriggerer:
    """The triggerer of `standalone`: every tenant, in a thread of the platform's process."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.stop = threading.Event()
        self.triggerer: Triggerer | None = None
        self.thread = threading.Thread(target=self._run, name="triggerer", daemon=True)

    def start(self) -> None:
        """Start serving triggers in the background."""
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.triggerer = Triggerer(capacity=self.capacity)
                self.triggerer.run(self.stop)
            except Exception:  # keep the embedded triggerer alive through a fault
                log.exception("embedded triggerer failed; restarting in 1 s")
                self.stop.wait(1)

    def shutdown(self) -> None:
        """Stop the triggers (their cleanup runs) and wait for the thread."""
        self.stop.set()
        if self.triggerer is not None:
            self.triggerer.wake()
        self.thread.join(30)
