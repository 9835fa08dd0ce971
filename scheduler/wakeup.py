"""Wake a tenant's scheduler the moment something happens, in this process or another one.

`notify(tenant_id, ended)` sets the in-process event and tells the other processes: with Redis configured it
publishes `ended` on `tradewind:wake:<tenant_id>`; without Redis it sends `<tenant_id>:<ended>` as a datagram
to every scheduler of this host through Unix sockets in `DATA_DIR/wakeup/`. A listener thread in each
scheduler process turns those messages back into in-process events. `ended` counts the tries the change
ended, which tells a resting scheduler when every task it left running has reported. A lost wake-up only
delays scheduling until the next timed pass.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "tradewind:wake:"
_pending: dict[int, int] = {}  # tenant notified since its scheduler last looked -> tries ended meanwhile
_condition = threading.Condition()
_listener_lock = threading.Lock()
_listener_started = False
_redis_client = None
_own_socket: Path | None = None


def _redis():
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return _redis_client


def _socket_dir() -> Path:
    return Path(settings.DATA_DIR) / "wakeup"


def notify_local(tenant_id: int, ended: int = 0) -> None:
    """Wake the tenant's scheduler if it runs in this process (and only there); `ended` tries ended."""
    with _condition:
        _pending[tenant_id] = _pending.get(tenant_id, 0) + ended
        _condition.notify_all()


def interrupt() -> None:
    """Make every `wait` of this process look at its `stop` event now (a scheduler is asked to stop)."""
    with _condition:
        _condition.notify_all()


def notify(tenant_id: int, ended: int = 0) -> None:
    """Something changed in the tenant (ending `ended` tries): its scheduler should look now."""
    # A process that listens to Redis hears its own message as well: the count arrives with it, once.
    notify_local(tenant_id, 0 if settings.REDIS_URL and _listener_started else ended)
    try:
        if settings.REDIS_URL:
            _redis().publish(f"{CHANNEL_PREFIX}{tenant_id}", str(ended).encode())
        else:
            _send_datagrams(f"{tenant_id}:{ended}".encode())
    except Exception:  # a lost wake-up only delays scheduling until the next timed pass
        logger.warning("could not send a scheduler wake-up", exc_info=True, extra={"tenant_id": tenant_id})


def wait(tenant_ids: list[int] | None, timeout: float, stop: threading.Event | None = None) -> dict[int, int]:
    """Sleep until one of the tenants (any tenant for None) is notified, `stop` is set (then call
    `interrupt()` to be heard at once) or `timeout` seconds pass; returns the notified tenants among them,
    each with the tries ended meanwhile, and consumes their notifications."""
    with _condition:
        wanted = None if tenant_ids is None else set(tenant_ids)

        def woken() -> dict[int, int]:
            return {t: n for t, n in _pending.items() if wanted is None or t in wanted}

        _condition.wait_for(
            lambda: bool(woken()) or (stop is not None and stop.is_set()), timeout=max(timeout, 0)
        )
        found = woken()
        for tenant_id in found:
            del _pending[tenant_id]
    return found


def start_listener(timeout: float = 2.0) -> None:
    """Listen for wake-ups sent by other processes (idempotent); returns once listening (or after
    `timeout` seconds), so that nothing sent after this call is missed."""
    global _listener_started
    with _listener_lock:
        if _listener_started:
            return
        _listener_started = True
    ready = threading.Event()
    target = _listen_redis if settings.REDIS_URL else _listen_socket
    threading.Thread(target=target, args=(ready,), name="wakeup-listener", daemon=True).start()
    ready.wait(timeout)


def _listen_redis(ready: threading.Event) -> None:
    while True:
        try:
            pubsub = _redis().pubsub(ignore_subscribe_messages=True)
            pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
            ready.set()
            for message in pubsub.listen():
                channel = message["channel"].decode()
                notify_local(int(channel.removeprefix(CHANNEL_PREFIX)), _count(message["data"]))
        except Exception:  # Redis restarted: reconnect; timed passes cover the gap
            logger.warning("wake-up listener lost Redis; reconnecting", exc_info=True)
            time.sleep(1)


def _listen_socket(ready: threading.Event) -> None:
    global _own_socket
    directory = _socket_dir()
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        path = directory / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.sock"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        server.bind(str(path))
        path.chmod(0o600)
    except OSError:  # e.g. a path too long for a Unix socket: timed passes still schedule
        logger.warning("no wake-up socket; other processes cannot wake this scheduler", exc_info=True)
        ready.set()
        return
    _own_socket = path
    ready.set()
    while True:
        try:
            tenant_id, _, ended = server.recv(64).partition(b":")
            notify_local(int(tenant_id), _count(ended))
        except (OSError, ValueError):
            logger.warning("bad wake-up datagram", exc_info=True)


def _count(data: bytes) -> int:
    """The ended tries a wake-up message carries (none when it carries no count)."""
    return int(data) if data.isdigit() else 0


def _send_datagrams(payload: bytes) -> None:
    directory = _socket_dir()
    try:
        paths = [directory / name for name in os.listdir(directory) if name.endswith(".sock")]
    except FileNotFoundError:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
        client.setblocking(False)
        for path in paths:
            if path == _own_socket:
                continue
            try:
                client.sendto(payload, str(path))
            except (ConnectionRefusedError, FileNotFoundError):  # its process is gone
                path.unlink(missing_ok=True)
            except BlockingIOError:  # that scheduler has wake-ups queued already
                pass
