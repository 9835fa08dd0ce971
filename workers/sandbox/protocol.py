"""Wire formats of the sandbox.

RPC channel (a stream socketpair between a job's child and the parent), one JSON object per line:
    parent -> child, first line   {"job": {"kind": ..., "setup": {...}, "payload": {...}}}
    child  -> parent, a request   {"id": 7, "op": "xcom_pull", "kwargs": {...}}
    parent -> child, its reply    {"id": 7, "result": <JSON>}  or  {"id": 7, "error": {"type": "KeyError",
                                                                                   "message": "..."}}
    child  -> parent, the end     {"done": <the job's result>}
    parent -> child, an order     {"push": {...}}  at any time, to a long-lived job only (the trigger host:
                                  triggerhost.py; sent with parent.send)
Control channel (a SOCK_SEQPACKET socketpair between the parent and its fork server), one JSON datagram each,
file descriptors passed with SCM_RIGHTS:
    parent -> server   {"op": "init", "sys_path": [...], "compat_dir": "..."}
                       {"op": "spawn", "job": 3}  + fds [child's RPC socket end, output pipe write end
                                                        (, a template's control socket end)]
                       {"op": "kill", "job": 3, "signal": 15}
    server -> parent   {"event": "ready", "pid": ..., "preload_s": ...}
                       {"event": "started", "job": 3, "pid": 4242}
                       {"event": "failed", "job": 3, "error": "fork failed: ..."}
                       {"event": "exited", "job": 3, "pid": 4242, "exitcode": 0 | None, "signal": None | 9}
A template (templates.py) speaks the same protocol on its own control socket, without "init"; instead of
the server's "ready" it sends {"event": "ready", "pid": ..., "output": "what the import printed"} or
{"event": "unusable", "reason": "..."}. Tenant code ran in it, so the parent trusts none of its reports
beyond the jobs it gave it.
"""

from __future__ import annotations

import builtins
import json
import os
import socket
from typing import Any

CONTROL_BUFSIZE = 65536
MAX_FDS = 4


class ProtocolError(Exception):
    """The other side sent something that is not a valid message."""


class RemoteError(Exception):
    """The parent's handler failed with an exception type the child does not know."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name


# One encoder for every message: json.dumps with separators builds a new one each call.
_compact = json.JSONEncoder(separators=(",", ":")).encode


def encode(message: dict[str, Any]) -> bytes:
    """One message as a JSON line (JSON never contains a raw newline)."""
    return _compact(message).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """One JSON line back into a message; ProtocolError when it is not a JSON object."""
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"invalid JSON message: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    return message


class LineBuffer:
    """Splits a byte stream into JSON messages, refusing a line longer than `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add received bytes; return the complete messages they finish."""
        self._data += data
        messages = []
        start = 0
        while (end := self._data.find(b"\n", start)) >= 0:
            messages.append(decode(bytes(self._data[start:end])))
            start = end + 1
        del self._data[:start]
        if len(self._data) > self.limit:
            raise ProtocolError(f"a message exceeded the limit of {self.limit} bytes")
        return messages


def error_payload(exc: BaseException) -> dict[str, str]:
    """An exception as the "error" member of a reply."""
    return {"type": type(exc).__name__, "message": str(exc)}


def rebuild_error(error: Any) -> Exception:
    """The exception the child raises for an error reply: the same builtin or SDK exception type when there is
    one with that name, otherwise RemoteError."""
    if not isinstance(error, dict):
        return RemoteError("Error", repr(error))
    type_name = str(error.get("type", "Error"))
    message = str(error.get("message", ""))
    cls = getattr(builtins, type_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        cls = _sdk_exception(type_name)
    if cls is not None:
        try:
            return cls(message)
        except Exception:  # an exception type whose constructor wants other arguments
            pass
    return RemoteError(type_name, message)


def _sdk_exception(type_name: str) -> type[Exception] | None:
    try:
        from tradewind.sdk import exceptions
    except ImportError:
        return None
    cls = getattr(exceptions, type_name, None)
    return cls if isinstance(cls, type) and issubclass(cls, Exception) else None


def send_control(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """Send one control datagram, with file descriptors when given."""
    data = _compact(message).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


def recv_control(sock: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    """Receive one control datagram and the descriptors passed with it; None at end of stream."""
    data, fds, _flags, _addr = socket.recv_fds(sock, CONTROL_BUFSIZE, MAX_FDS)
    if not data:
        for fd in fds:
            _close_quietly(fd)
        return None
    return decode(data), fds


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
