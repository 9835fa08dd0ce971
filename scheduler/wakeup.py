"""Wake a tenant's scheduler the moment something happens, in this process or another one.

`notify(tenant_id)` sets the in-process event and, when Redis is configured, publishes on
`tradewind:wake:<tenant_id>`; a listener thread in each scheduler process turns those messages back into
in-process events. Without Redis (embedded mode) everything runs in one process and the event suffices.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "tradewind:wake:"
_pending: set[int] = set()  # tenants notified since their scheduler last looked
_condition = threading.Condition()
_listener_started = False
_redis_client = None


def _redis():
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
    return _redis_client


def _notify_local(tenant_id: int) -> None:
    with _condition:
        _pending.add(tenant_id)
        _condition.notify_all()


def notify(tenant_id: int) -> None:
    """Something changed in the tenant: its scheduler should look now."""
    _notify_local(tenant_id)
    if settings.REDIS_URL:
        try:
            _redis().publish(f"{CHANNEL_PREFIX}{tenant_id}", b"1")
        except Exception:  # a lost wake-up only delays scheduling until the next timed pass
            logger.warning(
                "could not publish a scheduler wake-up", exc_info=True, extra={"tenant_id": tenant_id}
            )


def wait(tenant_ids: list[int], timeout: float) -> None:
    """Sleep until one of the tenants is notified or `timeout` seconds pass; consumes the notifications."""
    wanted = set(tenant_ids)
    with _condition:
        _condition.wait_for(lambda: bool(_pending & wanted), timeout=max(timeout, 0))
        _pending.difference_update(wanted)


def start_listener() -> None:
    """Listen for wake-ups published by other processes (idempotent; needs Redis)."""
    global _listener_started
    if _listener_started or not settings.REDIS_URL:
        return
    _listener_started = True
    threading.Thread(target=_listen, name="wakeup-listener", daemon=True).start()


def _listen() -> None:
    import time

    while True:
        try:
            pubsub = _redis().pubsub(ignore_subscribe_messages=True)
            pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
            for message in pubsub.listen():
                channel = message["channel"].decode()
                _notify_local(int(channel.removeprefix(CHANNEL_PREFIX)))
        except Exception:  # Redis restarted: reconnect; timed passes cover the gap
            logger.warning("wake-up listener lost Redis; reconnecting", exc_info=True)
            time.sleep(1)
