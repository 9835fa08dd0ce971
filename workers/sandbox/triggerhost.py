"""The trigger host: a long-lived sandboxed child that runs many triggers of one tenant's bundle at once, on one
asyncio loop (the child side of `workers.sandbox.api.TriggerHost`). This is where tenant trigger code runs.

Besides the usual request/reply lines, the parent sends orders while the host runs, each a line
`{"push": ORDER}` on the RPC socket (`parent.send`):
    {"op": "add", "key": K, "classpath": ..., "kwargs": {...}, "file": F | None}   start a trigger
    {"op": "cancel", "key": K}                                                     stop one (its cleanup runs)
    {"op": "ping", "n": N}                                                         answered from the loop
    {"op": "stop"}                                                                 cancel all and finish
The host reports with requests that need no answer: "trigger_event" {"key", "event"} or {"key", "error",
"traceback"}, "trigger_output" {"key", "data"} (what a trigger logged or printed), "trigger_pong" {"n"}. Requests
made by tenant code (Variable.get, ...) carry kwargs["trigger_key"]: the trigger that asked, or None. When the
parent closes the socket or sends SIGTERM the host stops the same way; it then reports {"done": {"stopped": n}}.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import itertools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workers.sandbox.child import Channel, RpcClient
from workers.sandbox.protocol import ProtocolError, rebuild_error

if TYPE_CHECKING:
    from workers.sandbox.jobs import _Bundle

TRIGGER_KEY = "trigger_key"
STOP_GRACE_S = 5.0
MAX_PARTIAL_LINE = 64 * 1024

# The trigger whose code is running: asyncio copies it into each trigger's task, so what a trigger prints,
# logs or asks for is attributed to it.
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("tradewind_trigger", default=None)


class _Link:
    """The host's end of the RPC socket: a reader thread routes replies to the callers waiting for them and
    orders to `on_order`; any thread may call or notify."""

    def __init__(
        self, channel: Channel, on_order: Callable[[dict], None], on_close: Callable[[], None]
    ) -> None:
        self._channel = channel
        self._on_order = on_order
        self._on_close = on_close
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, list[Any]] = {}  # id -> [threading.Event, reply]
        self._waiting_lock = threading.Lock()
        self._closed = False
        self._owner = os.getpid()
        threading.Thread(target=self._read, name="trigger-host-reader", daemon=True).start()

    def call(self, op: str, **kwargs: Any) -> Any:
        """Ask the parent on behalf of the current trigger; its result, or the error its handler raised."""
        if os.getpid() != self._owner:
            raise RuntimeError(f"{op} is not available in a process forked by a trigger")
        request_id = next(self._ids)
        waiter: list[Any] = [threading.Event(), None]
        with self._waiting_lock:
            if self._closed:
                raise ConnectionError("the sandbox parent closed the RPC channel")
            self._waiting[request_id] = waiter
        try:
            self._send({"id": request_id, "op": op, "kwargs": {**kwargs, TRIGGER_KEY: _current.get()}})
        except (TypeError, ValueError) as exc:
            with self._waiting_lock:
                self._waiting.pop(request_id, None)
            raise TypeError(f"{op}: the value is not JSON-serializable: {exc}") from None
        waiter[0].wait()
        reply = waiter[1]
        if reply is None:
            raise ConnectionError("the sandbox parent closed the RPC channel")
        if "error" in reply:
            raise rebuild_error(reply["error"])
        return reply.get("result")

    def notify(self, op: str, **kwargs: Any) -> None:
        """Tell the parent something; its (empty) answer is dropped."""
        self._send({"id": next(self._ids), "op": op, "kwargs": kwargs})

    def _send(self, message: dict[str, Any]) -> None:
        with self._send_lock:
            self._channel.send(message)

    def _read(self) -> None:
        try:
            while True:
                message = self._channel.read()
                if isinstance(message.get("push"), dict):
                    self._on_order(message["push"])
                    continue
                with self._waiting_lock:
                    waiter = self._waiting.pop(message.get("id"), None)
                if waiter is not None:
                    waiter[1] = message
                    waiter[0].set()
        except (ConnectionError, OSError, ProtocolError):
            pass
        finally:
            with self._waiting_lock:
                self._closed = True
                waiters, self._waiting = list(self._waiting.values()), {}
            for waiter in waiters:
                waiter[0].set()
            self._on_close()


class _Router(io.TextIOBase):
    """sys.stdout / sys.stderr of the host: text written by a trigger goes to the parent, line by line,
    attributed to that trigger; anything else to the host's own output."""

    def __init__(self, original: Any, link: _Link) -> None:
        self._original = original
        self._link = link
        self._partial: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:
        return getattr(self._original, "encoding", "utf-8")

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._original.fileno()

    def write(self, text: str) -> int:
        key = _current.get()
        if key is None:
            return self._original.write(text)
        with self._lock:
            pending = self._partial.pop(key, "") + text
            cut = pending.rfind("\n") + 1
            if cut == 0 and len(pending) > MAX_PARTIAL_LINE:
                cut = len(pending)
            if cut < len(pending):
                self._partial[key] = pending[cut:]
        if cut:
            self._forward(key, pending[:cut])
        return len(text)

    def flush_trigger(self, key: str) -> None:
        """Send what is left of the trigger's last unterminated line."""
        with self._lock:
            rest = self._partial.pop(key, "")
        if rest:
            self._forward(key, rest + "\n")

    def flush(self) -> None:
        self._original.flush()

    def _forward(self, key: str, text: str) -> None:
        try:
            self._link.notify("trigger_output", key=key, data=text)
        except OSError:
            pass  # the parent is gone; the host is stopping


class _Host:
    """The triggers running in this process, one asyncio task each."""

    def __init__(self, link_factory: Callable[[_Host], _Link], bundle: _Bundle) -> None:
        self.loop = asyncio.get_running_loop()
        self.bundle = bundle
        self.tasks: dict[str, asyncio.Task] = {}
        self.stopping = asyncio.Event()
        self.link = link_factory(self)
        self.routers = [_Router(sys.stdout, self.link), _Router(sys.stderr, self.link)]

    def order(self, order: dict[str, Any]) -> None:
        """From the reader thread: carry out the order on the loop."""
        try:
            self.loop.call_soon_threadsafe(self._carry_out, order)
        except RuntimeError:
            pass  # the loop is closed: the host is ending

    def closed(self) -> None:
        """From the reader thread: the parent is gone."""
        try:
            self.loop.call_soon_threadsafe(self.stopping.set)
        except RuntimeError:
            pass

    def _carry_out(self, order: dict[str, Any]) -> None:
        op = order.get("op")
        if op == "add":
            self._add(order)
        elif op == "cancel":
            task = self.tasks.pop(str(order.get("key")), None)
            if task is not None:
                task.cancel()
        elif op == "ping":
            self._notify("trigger_pong", n=order.get("n"))
        elif op == "stop":
            self.stopping.set()

    def _add(self, order: dict[str, Any]) -> None:
        key = str(order.get("key"))
        if key in self.tasks:
            return
        token = _current.set(key)
        try:
            self.tasks[key] = self.loop.create_task(
                self._run(key, str(order.get("classpath")), order.get("kwargs") or {}, order.get("file"))
            )
        finally:
            _current.reset(token)

    async def _run(self, key: str, classpath: str, kwargs: dict[str, Any], file: str | None) -> None:
        try:
            result = await _first_result(classpath, kwargs, file, self.bundle)
        finally:
            for router in self.routers:
                router.flush_trigger(key)
        if self.tasks.pop(key, None) is not None:
            self._notify("trigger_event", key=key, **result)

    def _notify(self, op: str, **kwargs: Any) -> None:
        try:
            self.link.notify(op, **kwargs)
        except (TypeError, ValueError) as exc:  # an event payload JSON cannot carry
            self.link.notify(op, key=kwargs.get("key"), error=f"the trigger's event cannot be sent: {exc}")
        except OSError:
            self.stopping.set()

    async def serve(self) -> dict[str, Any]:
        """Run triggers until told to stop; then cancel the ones left (their cleanup runs)."""
        self.loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        await self.stopping.wait()
        left = list(self.tasks.values())
        self.tasks.clear()
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left, timeout=STOP_GRACE_S)
        return {"stopped": len(left)}


async def _first_result(classpath: str, kwargs: dict[str, Any], file: str | None, bundle: _Bundle) -> dict:
    """Build the trigger and run it until its first event: {"event": payload} or {"error", "traceback"}."""
    from tradewind.sdk.execution import decode_value, encode_value
    from tradewind.sdk.triggers import _first_event

    try:
        trigger = _trigger_class(classpath, file, bundle)(**decode_value(kwargs))
    except Exception as exc:
        message, text = bundle.describe(exc, f"while creating trigger {classpath}")
        return {"error": message, "traceback": text}
    try:
        event = await _first_event(trigger)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # SystemExit and the like end this trigger, never the host
        message, text = bundle.describe(exc, f"in trigger {classpath}")
        return {"error": message, "traceback": text}
    if event is None:
        return {"error": f"Trigger {classpath} finished without an event", "traceback": None}
    try:
        return {"event": encode_value(event.payload, what=f"The event of trigger {classpath}")}
    except TypeError as exc:
        return {"error": str(exc), "traceback": None}


def _trigger_class(classpath: str, file: str | None, bundle: _Bundle) -> Any:
    """The class named by `classpath`. A trigger class defined in a DAG file has that file's import name
    (parsing.unique_module_name): such a module is imported from the file, once per host."""
    from tradewind.sdk.parsing import import_dag_file, unique_module_name
    from tradewind.sdk.triggers import import_string

    module_name = classpath.rpartition(".")[0]
    if file and module_name not in sys.modules and module_name == unique_module_name(bundle.path(file)):
        import_dag_file(bundle.path(file), module_name=module_name, root=bundle.root)
    return import_string(classpath)


def serve(channel: Channel, bundle: _Bundle) -> dict[str, Any]:
    """The trigger_host job: run triggers as the parent orders until it says stop or goes away."""
    return asyncio.run(_serve(channel, bundle))


async def _serve(channel: Channel, bundle: _Bundle) -> dict[str, Any]:
    from tradewind.sdk import execution

    host = _Host(lambda h: _Link(channel, on_order=h.order, on_close=h.closed), bundle)
    execution.set_client(RpcClient(host.link))  # type: ignore[arg-type]  (RpcClient only calls .call)
    originals = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = host.routers
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is originals[1]:
            handler.setStream(host.routers[1])
    try:
        return await host.serve()
    finally:
        sys.stdout, sys.stderr = originals
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is host.routers[1]:
                handler.setStream(originals[1])
