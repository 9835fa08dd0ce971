"""Fan-out of engine events to the channel layer, off the engine's hot path.

Every process that changes state publishes its events (scheduler.events); `install()` subscribes this
module's `submit` to them once per process (LiveConfig.ready). It only files the event and returns: a
background thread sends what has been filed to the groups `tenant.<id>` and the DAGs' groups
(tradewind.live.groups), one message per group per batch (a busy worker files hundreds of events a second):
{"type": "live.events", "events": [{tenant, dag_id, run_id, task_id, map_index, state, try_number}, ...]}.
Batches go out at most every SEND_INTERVAL seconds: what arrives meanwhile joins the next one, so a stream of
events costs a few sends a second instead of one per event, for at most that much delay in a live view.

Under pressure events are coalesced, then dropped, never queued without bound: while an event waits, a newer
one for the same run or task instance replaces it (a live view wants the latest state), and once
MAX_PENDING distinct events wait, further ones are dropped and counted. Nothing here raises into the engine
or touches the database. At exit a process waits briefly (EXIT_FLUSH_SECONDS) for its last events, so a
short-lived one (a command that triggered a run) still delivers them.

With Redis the thread sends on an event loop of its own and the layer carries the message to the web
processes. The in-memory layer (embedded mode: one process) is not safe across threads or event loops, so
its messages are sent on the event loop the websocket consumers run on, which they announce with
`attach_consumer_loop`; until a consumer has connected there is nobody to tell and events are dropped.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer

from scheduler import events
from tradewind.live.groups import dag_group, tenant_group

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "live.events"
MAX_PENDING = 10_000
SEND_TIMEOUT = 5.0
SEND_INTERVAL = 0.1
EXIT_FLUSH_SECONDS = 2.0
_DROP_LOG_INTERVAL = 60.0

_Key = tuple[Any, ...]


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def clean_event(event: dict) -> dict | None:
    """What is sent of an engine event: exactly its fields, as plain ints and strings (whatever else a
    publisher put in never reaches a browser); None for an event without a tenant or a DAG."""
    try:
        if event.get("tenant") is None or not event.get("dag_id"):
            return None
        return {
            "tenant": int(event["tenant"]),
            "dag_id": str(event["dag_id"]),
            "run_id": _str_or_none(event.get("run_id")),
            "task_id": _str_or_none(event.get("task_id")),
            "map_index": _int_or_none(event.get("map_index")),
            "state": _str_or_none(event.get("state")),
            "try_number": _int_or_none(event.get("try_number")),
        }
    except (TypeError, ValueError, AttributeError):
        return None


async def send_to_groups(layer: BaseChannelLayer, events: list[dict]) -> None:
    """Send the events, in order, to their tenants' groups and their DAGs' groups: one message per group."""
    by_group: dict[str, list[dict]] = {}
    for event in events:
        by_group.setdefault(tenant_group(event["tenant"]), []).append(event)
        by_group.setdefault(dag_group(event["tenant"], event["dag_id"]), []).append(event)
    for group, batch in by_group.items():
        await layer.group_send(group, {"type": MESSAGE_TYPE, "events": batch})


class Fanout:
    """A bounded, coalescing hand-off from the engine's threads to one sender thread per process.

    `submit` never blocks on the channel layer and never raises; the sender thread starts with the first
    event (and again in a forked child, which does not inherit threads).
    """

    def __init__(
        self,
        max_pending: int = MAX_PENDING,
        send_timeout: float = SEND_TIMEOUT,
        send_interval: float = SEND_INTERVAL,
    ) -> None:
        self.max_pending = max_pending
        self.send_timeout = send_timeout
        self.send_interval = send_interval
        self.dropped = 0
        self._consumer_loop: asyncio.AbstractEventLoop | None = None
        self._start_afresh()
        atexit.register(self._flush_at_exit)

    def _start_afresh(self) -> None:
        self._pid = os.getpid()
        self._condition = threading.Condition()
        self._pending: OrderedDict[_Key, dict] = OrderedDict()
        self._sending = False
        self._thread: threading.Thread | None = None
        self._last_drop_log = 0.0

    def submit(self, event: dict) -> None:
        """File `event` for sending (the scheduler.events subscriber); returns at once, never raises."""
        try:
            self._submit(event)
        except Exception:
            logger.exception("could not file a live event", extra={"event": event})

    def _submit(self, event: dict) -> None:
        if os.getpid() != self._pid:
            self._start_afresh()
        fields = clean_event(event)
        if fields is None:
            return
        key = (fields["tenant"], fields["dag_id"], fields["run_id"], fields["task_id"], fields["map_index"])
        with self._condition:
            if key not in self._pending and len(self._pending) >= self.max_pending:
                self._note_drop()
                return
            self._pending[key] = fields  # an existing key keeps its place: order by first arrival
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="tradewind-live-fanout", daemon=True)
                self._thread.start()
            self._condition.notify()

    def _note_drop(self) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._last_drop_log >= _DROP_LOG_INTERVAL:
            self._last_drop_log = now
            logger.warning(
                "live events are arriving faster than they can be sent: dropping some",
                extra={"dropped_total": self.dropped, "max_pending": self.max_pending},
            )

    def attach_consumer_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Say which event loop the websocket consumers of this process run on (needed by the in-memory
        layer only; the latest call wins, and a server runs one loop)."""
        self._consumer_loop = loop

    @property
    def backlog(self) -> int:
        """How many events wait to be sent (not counting the batch being sent)."""
        with self._condition:
            return len(self._pending)

    def _flush_at_exit(self) -> None:
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            self.wait_idle(EXIT_FLUSH_SECONDS)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every event filed so far was handed to the channel layer (or dropped); False if that
        took longer than `timeout` seconds."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._pending and not self._sending, timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        while True:
            with self._condition:
                self._condition.wait_for(lambda: bool(self._pending))
                batch = list(self._pending.values())
                self._pending.clear()
                self._sending = True
            began = time.monotonic()
            try:
                self._send(loop, batch)
            except Exception:
                logger.warning("live events could not be sent", exc_info=True, extra={"lost": len(batch)})
            finally:
                with self._condition:
                    self._sending = False
                    self._condition.notify_all()
            time.sleep(max(0.0, began + self.send_interval - time.monotonic()))

    def _send(self, own_loop: asyncio.AbstractEventLoop, batch: list[dict]) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        if not isinstance(layer, InMemoryChannelLayer):
            own_loop.run_until_complete(asyncio.wait_for(send_to_groups(layer, batch), self.send_timeout))
            return
        target = self._consumer_loop
        if target is None or target.is_closed():
            return
        sending = send_to_groups(layer, batch)
        try:
            future = asyncio.run_coroutine_threadsafe(sending, target)
        except RuntimeError:  # the loop closed since we looked: its consumers are gone too
            sending.close()
            return
        try:
            future.result(timeout=self.send_timeout)
        except FutureTimeout:
            future.cancel()
            raise


_fanout = Fanout()
_installed = False


def install() -> None:
    """Subscribe this process's fan-out to the engine's events (idempotent)."""
    global _installed
    if not _installed:
        _installed = True
        events.subscribe(submit)


def submit(event: dict) -> None:
    """The scheduler.events subscriber of this process: file `event` for the live groups."""
    _fanout.submit(event)


def attach_consumer_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called by websocket consumers with their running loop (see Fanout.attach_consumer_loop)."""
    _fanout.attach_consumer_loop(loop)
