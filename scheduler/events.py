"""State-change events: small dicts published after the change commits, to in-process subscribers.

An event is {"tenant", "dag_id", "run_id", "task_id", "map_index", "state", "try_number"} (task_id, map_index
and try_number are None for a run's own event). Subscribers (the scheduler's wake-up, the live UI's fan-out)
must be quick and must not raise; one that raises is logged and the others still get the event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from django.db import transaction

logger = logging.getLogger(__name__)

Subscriber = Callable[[dict], None]

_subscribers: list[Subscriber] = []
_lock = threading.Lock()


def subscribe(callback: Subscriber) -> Callable[[], None]:
    """Call `callback(event)` for every event published from now on; returns the unsubscribe function."""
    with _lock:
        _subscribers.append(callback)

    def unsubscribe() -> None:
        with _lock:
            if callback in _subscribers:
                _subscribers.remove(callback)

    return unsubscribe


def publish(event: dict) -> None:
    """Hand `event` to every subscriber now (callers use `publish_on_commit` inside transactions)."""
    with _lock:
        subscribers = list(_subscribers)
    for callback in subscribers:
        try:
            callback(event)
        except Exception:
            logger.exception("an event subscriber failed", extra={"event": event})


def publish_on_commit(events: Iterable[dict], *, wake: bool = True) -> None:
    """Publish `events` once the current transaction commits (at once outside a transaction); nothing is
    published if it rolls back. `wake=False`: the scheduler that made these changes needs no wake-up for
    them (it acts on them in the same pass)."""
    batch = list(events)
    if batch:
        transaction.on_commit(lambda: _deliver(batch, wake))


# A task instance queued or running only echoes what a scheduler or worker just did; everything else
# (a task finished, a run created or finished) may let a scheduler make progress.
_QUIET_TI_STATES = frozenset({"queued", "running"})


def _deliver(batch: list[dict], wake: bool) -> None:
    from scheduler import wakeup

    for event in batch:
        publish(event)
    if not wake:
        return
    ended: dict[int, int] = {}  # tenant woken -> tries the batch ended
    for e in batch:
        if e["task_id"] is None or e["state"] not in _QUIET_TI_STATES:
            ended[e["tenant"]] = ended.get(e["tenant"], 0) + (0 if e["task_id"] is None else 1)
    for tenant_id, count in ended.items():
        wakeup.notify(tenant_id, count)
