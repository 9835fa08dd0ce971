"""The parent side of the sandbox: the fork server of this process and running one job in a child.

One fork server per process (keyed by pid: a process that forks, like a Celery prefork worker, does not share
its server with its children), started lazily and restarted when it died. Several threads may run jobs at once;
each job is driven entirely by the thread that runs it, and a reader thread per fork server routes the server's
reports to the job they belong to.
"""

from __future__ import annotations

import collections
import functools
import itertools
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.sandbox.limits import Limits, jobs_dir, tenant_ids
from workers.sandbox.protocol import (
    LineBuffer,
    ProtocolError,
    encode,
    error_payload,
    recv_control,
    send_control,
)

log = logging.getLogger(__name__)

RpcHandler = Callable[[str, dict[str, Any]], Any]
PLATFORM_ROOT = Path(__file__).resolve().parents[2]
COMPAT_DIR = PLATFORM_ROOT / "workers" / "compat"
# The only variables a child inherits from the platform's environment (never credentials or settings).
INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
TENANT_USER = "airflow"  # the user name a child under its tenant's uid is given
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OUTPUT_TAIL_BYTES = 4096
READ_CHUNK = 1 << 16
MAX_LINE_BYTES = 1 << 16
GIVE_UP_AFTER_KILL_S = 30.0
DRAIN_S = 1.0


class SandboxError(Exception):
    """The sandbox itself could not run a job (not an error of the tenant's code)."""


class ServerDied(SandboxError):
    """The fork server went away."""


def _scrubbed_env() -> dict[str, str]:
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def platform_sys_path() -> list[str]:
    """The platform's import path for a sandboxed child (every job asks: checked once per sys.path)."""
    return list(_platform_sys_path(tuple(sys.path)))


@functools.lru_cache(maxsize=4)
def _platform_sys_path(sys_path: tuple[str, ...]) -> tuple[str, ...]:
    paths = [str(PLATFORM_ROOT)]
    for entry in sys_path:
        entry = os.path.abspath(entry) if entry else ""
        if entry and entry not in paths and entry != str(COMPAT_DIR) and os.path.isdir(entry):
            paths.append(entry)
    return tuple(paths)


class _Inbox:
    """Reports from the fork server for one job; an eventfd wakes the job's selector."""

    def __init__(self) -> None:
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._events: collections.deque[dict[str, Any]] = collections.deque()

    def put(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        os.eventfd_write(self.fd, 1)

    def take(self) -> list[dict[str, Any]]:
        try:
            os.eventfd_read(self.fd)
        except BlockingIOError:
            pass
        taken = []
        while self._events:
            taken.append(self._events.popleft())
        return taken

    def close(self) -> None:
        os.close(self.fd)


class Spawner:
    """The parent's end of a control socket to a process that forks jobs' children (the fork server, or a
    template: templates.py), and a reader thread that routes its reports to the job they belong to."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.owner = os.getpid()
        self.alive = True
        self.ready = threading.Event()
        self._lock = threading.Lock()
        self._inboxes: dict[int, _Inbox] = {}
        self._ids = itertools.count(1)

    def start_reader(self, name: str) -> None:
        threading.Thread(target=self._read_loop, name=name, daemon=True).start()

    def spawn(self, inbox: _Inbox, fds: list[int]) -> int:
        """Ask the server to fork a child for a new job; return the job id. ServerDied if it is gone."""
        with self._lock:
            if not self.alive:
                raise ServerDied("the sandbox fork server is not running")
            job = next(self._ids)
            self._inboxes[job] = inbox
            try:
                send_control(self.sock, {"op": "spawn", "job": job}, fds)
            except OSError as exc:
                del self._inboxes[job]
                # The reader thread may not have seen the end of the socket yet: the next job starts anew.
                self.alive = False
                raise ServerDied(f"the sandbox fork server is not running: {exc}") from None
        return job

    def kill(self, job: int, signum: int) -> None:
        """Signal the job's process group (nothing if it already exited or the server is gone)."""
        with self._lock:
            if not self.alive:
                return
            try:
                send_control(self.sock, {"op": "kill", "job": job, "signal": int(signum)})
            except OSError:
                pass

    def forget(self, job: int) -> None:
        """Stop routing reports for a job that is no longer waited for."""
        with self._lock:
            self._inboxes.pop(job, None)

    def running_jobs(self) -> int:
        """How many of its children have not been reported exited."""
        with self._lock:
            return len(self._inboxes)

    def on_event(self, event: dict[str, Any]) -> None:
        """A report that belongs to no job (like "ready")."""

    def on_closed(self) -> None:
        """The control socket reached its end: the server is gone."""

    def _read_loop(self) -> None:
        while True:
            try:
                received = recv_control(self.sock)
            except (OSError, ProtocolError):
                received = None
            if received is None:
                break
            event, _fds = received
            if "job" not in event:
                self.on_event(event)
                continue
            # Delivered under the lock that forget() takes: once a job has forgotten its inbox (and then
            # closes its eventfd), nothing can write to that descriptor number again.
            with self._lock:
                inbox = self._inboxes.get(event.get("job"))
                if event.get("event") in ("exited", "failed"):
                    self._inboxes.pop(event.get("job"), None)
                if inbox is not None:
                    inbox.put(event)
        with self._lock:
            self.alive = False
            for inbox in self._inboxes.values():
                inbox.put({"event": "server_died"})
            self._inboxes.clear()
        self.ready.set()
        self.sock.close()
        self.on_closed()


class ForkServer(Spawner):
    """This process's fork server: a clean interpreter (server.py) started with a fresh exec."""

    def __init__(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workers.sandbox.server", str(theirs.fileno())],
            cwd=PLATFORM_ROOT,
            env=_scrubbed_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            close_fds=True,
            pass_fds=[theirs.fileno()],
            start_new_session=True,
        )
        theirs.close()
        super().__init__(mine)
        self.preload_s: float | None = None
        send_control(
            self.sock, {"op": "init", "sys_path": platform_sys_path(), "compat_dir": str(COMPAT_DIR)}
        )
        self.start_reader("sandbox-fork-server")

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def close_after_fork(self) -> None:
        """In a forked child of the parent: drop the inherited control socket without touching the server."""
        self.alive = False
        self.sock.close()

    def on_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "ready":
            self.preload_s = event.get("preload_s")
            self.ready.set()

    def on_closed(self) -> None:
        self.process.wait()
        log.warning("sandbox fork server %s exited with status %s", self.process.pid, self.process.returncode)


_server: ForkServer | None = None
_server_lock = threading.Lock()


def get_server() -> ForkServer:
    """This process's fork server, started (or restarted after it died) on demand."""
    global _server
    with _server_lock:
        if _server is None or not _server.alive or _server.owner != os.getpid():
            _server = ForkServer()
            log.info("started sandbox fork server %s", _server.pid)
        return _server


def _after_fork_in_child() -> None:
    global _server, _server_lock
    _server_lock = threading.Lock()
    if _server is not None:
        _server.close_after_fork()
        _server = None
    _running.clear()


@dataclass
class JobResult:
    """What happened to one job, as seen by the parent."""

    result: Any = None
    done: bool = False
    pid: int | None = None
    exitcode: int | None = None
    signal: int | None = None
    timed_out: bool = False
    cancelled: bool = False
    output_exceeded: bool = False
    protocol_error: str | None = None
    sandbox_error: str | None = None
    output_tail: bytes = b""
    duration_s: float = 0.0


@dataclass
class JobSpec:
    """One job to run: its kind and payload, and how the child is to be sandboxed and watched."""

    kind: str
    payload: dict[str, Any]
    root: Path  # the bundle version's folder, already resolved (api.py resolves what callers pass)
    tenant_id: int
    limits: Limits
    timeout_s: float | None
    handler: RpcHandler | None = None
    output: Callable[[bytes], None] | None = None
    on_start: Callable[[int], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    kill_on_output_limit: bool = False
    terminate_first: bool = True
    # Fork the child from this template (templates.py) rather than from the fork server.
    spawner: Spawner | None = None
    # One more descriptor the child gets (a template's control socket); closed here once it is sent.
    extra_fd: int | None = None


_running: dict[int, _Job] = {}
_running_lock = threading.Lock()


def terminate(pid: int) -> bool:
    """Stop the running job whose child has this pid (SIGTERM, SIGKILL after the grace period). False when no
    job of this process has that pid."""
    with _running_lock:
        job = _running.get(pid)
    if job is None:
        return False
    job.cancel()
    return True


def send(pid: int, message: dict[str, Any]) -> bool:
    """Send `message` to the running job whose child has this pid, as one line on its RPC socket (for
    long-lived jobs that take orders while they run, like the trigger host). False when no job of this
    process has that pid. TypeError/ValueError when the message is not JSON."""
    data = encode(message)
    with _running_lock:  # held while queueing: the job closes its inbox only after leaving _running
        job = _running.get(pid)
        if job is None:
            return False
        job.inbox.put({"event": "send", "data": data})
    return True


def run_job(spec: JobSpec) -> JobResult:
    """Run one job in a sandboxed child and wait for it; never raises for what the child does."""
    job = _Job(spec)
    try:
        return job.run()
    finally:
        job.close()


class _Job:
    """Drives one child: sends the job, answers its RPC requests, reads its output, enforces timeout and caps."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.res = JobResult()
        self.inbox = _Inbox()
        self.sel = selectors.DefaultSelector()
        self.workdir: Path | None = None
        self.rpc: socket.socket | None = None
        self.out_r: int | None = None
        self.server: Spawner | None = None
        self.job_id: int | None = None
        self.exited = False
        self.pending = bytearray()
        self.lines = LineBuffer(spec.limits.rpc_message_bytes)
        self.output_seen = 0
        self.forwarding = spec.output is not None
        self.partial_line = bytearray()
        self.kill_at: float | None = None
        self.give_up_at: float | None = None

    def cancel(self) -> None:
        """Ask the job's own thread to stop the child (callable from any thread)."""
        self.inbox.put({"event": "cancel"})

    def run(self) -> JobResult:
        started = time.monotonic()
        try:
            self._start()
        except (SandboxError, OSError) as exc:
            self.res.sandbox_error = str(exc)
            return self.res
        deadline = None if self.spec.timeout_s is None else started + self.spec.timeout_s
        try:
            while not self.exited:
                now = time.monotonic()
                if deadline is not None and now >= deadline and not self.res.timed_out:
                    self.res.timed_out = True
                    self._stop(graceful=self.spec.terminate_first)
                if self.kill_at is not None and now >= self.kill_at:
                    self.kill_at = None
                    self._signal(signal.SIGKILL)
                if self.give_up_at is not None and now >= self.give_up_at:
                    self.res.sandbox_error = (
                        f"the child did not exit {GIVE_UP_AFTER_KILL_S:.0f} s after SIGKILL"
                    )
                    break
                pending_deadline = None if self.res.timed_out else deadline
                wakeups = [t for t in (pending_deadline, self.kill_at, self.give_up_at) if t is not None]
                wait = max(0.0, min(wakeups) - now) if wakeups else None
                for key, events in self.sel.select(wait):
                    self._dispatch(key.data, events)
            self._drain()
        finally:
            self.res.duration_s = time.monotonic() - started
            if self.res.pid is not None:
                with _running_lock:
                    if _running.get(self.res.pid) is self:
                        del _running[self.res.pid]
            if not self.exited and self.job_id is not None and self.server is not None:
                self.server.kill(self.job_id, signal.SIGKILL)
        return self.res

    def _start(self) -> None:
        try:
            self._spawn_child()
        finally:
            if self.spec.extra_fd is not None:
                os.close(self.spec.extra_fd)

    def _spawn_child(self) -> None:
        spec = self.spec
        ids = tenant_ids(spec.tenant_id)
        self.workdir = Path(tempfile.mkdtemp(prefix="job-", dir=jobs_dir()))
        if ids is not None:
            os.chown(self.workdir, *ids)
        rpc, child_rpc = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        self.rpc, self.out_r = rpc, out_r
        rpc.setblocking(False)
        os.set_blocking(out_r, False)
        workdir = str(self.workdir)
        root = str(spec.root)
        env = {
            **_scrubbed_env(),
            "HOME": workdir,
            "TMPDIR": workdir,
            # Airflow's image sets it and code builds paths on it: the job's own directory, no platform one.
            "AIRFLOW_HOME": workdir,
            "AIRFLOW__CORE__DAGS_FOLDER": root,  # the repository's files, as `conf.get("core", "dags_folder")`
            "PYTHONDONTWRITEBYTECODE": "1",
            "MALLOC_ARENA_MAX": "2",  # see child.MALLOC_ARENAS: the processes the job starts need it too
            # A tenant's uid has no passwd entry: getpass.getuser() and `$USER` answer as in Airflow's image.
            **({"USER": TENANT_USER, "LOGNAME": TENANT_USER} if ids is not None else {}),
            **spec.env,
        }
        setup = {
            "root": root,
            "workdir": workdir,
            "env": env,
            "ids": ids,
            "limits": spec.limits.to_dict(),
            "cpu_s": spec.limits.cpu_limit(spec.timeout_s),
            "sys_path": [root, str(COMPAT_DIR), *platform_sys_path()],
        }
        self.pending += encode({"job": {"kind": spec.kind, "setup": setup, "payload": spec.payload}})
        self.sel.register(rpc, selectors.EVENT_READ | selectors.EVENT_WRITE, "rpc")
        self.sel.register(out_r, selectors.EVENT_READ, "out")
        self.sel.register(self.inbox.fd, selectors.EVENT_READ, "inbox")
        fds = [child_rpc.fileno(), out_w] + ([spec.extra_fd] if spec.extra_fd is not None else [])
        try:
            self.server, self.job_id = _spawn(spec.spawner, self.inbox, fds)
        finally:
            child_rpc.close()
            os.close(out_w)

    def _dispatch(self, what: str, events: int) -> None:
        if what == "inbox":
            for event in self.inbox.take():
                self._on_event(event)
        elif what == "out":
            self._read_output()
        elif events & selectors.EVENT_WRITE:
            self._write_rpc()
        if what == "rpc" and events & selectors.EVENT_READ:
            self._read_rpc()

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "started":
            pid = event.get("pid")
            with _running_lock:
                # A template (tenant code ran in it) could name another job's child: never let it take
                # that job's place (terminate() and send() find jobs by pid).
                owner = _running.setdefault(pid, self) if isinstance(pid, int) else None
            if owner is not self:
                self._protocol_error("the child's start was reported with an invalid pid")
                return
            self.res.pid = pid
            if self.spec.on_start is not None:
                try:
                    self.spec.on_start(self.res.pid)
                except Exception:
                    log.exception("the sandbox on_start callback failed")
        elif kind == "exited":
            self.exited = True
            self.res.exitcode = event.get("exitcode")
            self.res.signal = event.get("signal")
        elif kind == "failed":
            self.exited = True
            self.res.sandbox_error = str(event.get("error"))
        elif kind == "server_died":
            self.exited = True
            self.res.sandbox_error = "the sandbox fork server died"
        elif kind == "send" and self.rpc is not None and self.rpc in self.sel.get_map():
            self._queue(event["data"])
        elif kind == "cancel" and not self.res.cancelled:
            self.res.cancelled = True
            self._stop(graceful=True)

    def _stop(self, *, graceful: bool) -> None:
        if graceful:
            self._signal(signal.SIGTERM)
            self.kill_at = time.monotonic() + self.spec.limits.kill_grace_s
        else:
            self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.server is not None and self.job_id is not None:
            self.server.kill(self.job_id, signum)
        if signum == signal.SIGKILL and self.give_up_at is None:
            self.give_up_at = time.monotonic() + GIVE_UP_AFTER_KILL_S

    def _read_output(self) -> None:
        assert self.out_r is not None
        try:
            data = os.read(self.out_r, READ_CHUNK)
        except BlockingIOError:
            return
        if not data:
            self.sel.unregister(self.out_r)
            return
        self._take_output(data)

    def _take_output(self, data: bytes) -> None:
        limit = self.spec.limits.output_bytes
        before = self.output_seen
        self.output_seen += len(data)
        self.res.output_tail = (self.res.output_tail + data)[-OUTPUT_TAIL_BYTES:]
        if before > limit:
            return
        if self.output_seen <= limit:
            self._forward_lines(data)
            return
        self._forward_lines(data[: limit - before])
        self._forward_lines(b"", flush=True)
        self._forward(f"\n[output truncated at {limit} bytes]\n".encode())
        self.res.output_exceeded = True
        self.forwarding = False
        if self.spec.kill_on_output_limit:
            self._stop(graceful=False)

    def _forward_lines(self, data: bytes, *, flush: bool = False) -> None:
        """Forward whole lines only (a line longer than MAX_LINE_BYTES in pieces), so that the caller's masking
        of secrets never sees a secret cut in two by a read."""
        if not self.forwarding:
            return
        self.partial_line += data
        cut = len(self.partial_line) if flush else self.partial_line.rfind(b"\n") + 1
        if len(self.partial_line) - cut > MAX_LINE_BYTES:
            cut = len(self.partial_line)
        if cut:
            self._forward(bytes(self.partial_line[:cut]))
            del self.partial_line[:cut]

    def _forward(self, data: bytes) -> None:
        if not (self.forwarding and data and self.spec.output is not None):
            return
        try:
            self.spec.output(data)
        except Exception:
            log.exception("the sandbox output callback failed; no more output is forwarded for this job")
            self.forwarding = False

    def _write_rpc(self) -> None:
        assert self.rpc is not None
        try:
            sent = self.rpc.send(self.pending)
        except BlockingIOError:
            return
        except OSError:
            sent = len(self.pending)  # the child is gone; its exit report follows
        del self.pending[:sent]
        if not self.pending:
            self.sel.modify(self.rpc, selectors.EVENT_READ, "rpc")

    def _read_rpc(self) -> None:
        assert self.rpc is not None
        try:
            data = self.rpc.recv(READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(self.rpc)
            return
        try:
            messages = self.lines.feed(data)
        except ProtocolError as exc:
            self._protocol_error(str(exc))
            return
        for message in messages:
            self._on_message(message)

    def _on_message(self, message: dict[str, Any], *, answer: bool = True) -> None:
        if "done" in message:
            if not self.res.done:
                self.res.done = True
                self.res.result = message["done"]
            return
        if "internal_error" in message:
            self.res.sandbox_error = f"internal error in the child: {message['internal_error']}"
            return
        if not answer:
            return
        request_id, op, kwargs = message.get("id"), message.get("op"), message.get("kwargs")
        if not isinstance(request_id, int) or not isinstance(op, str) or not isinstance(kwargs, dict):
            self._protocol_error("malformed RPC request")
            return
        self._reply(request_id, op, kwargs)

    def _reply(self, request_id: int, op: str, kwargs: dict[str, Any]) -> None:
        handler = self.spec.handler
        if handler is None:
            error = {"type": "RuntimeError", "message": f"{op} is not available here (no RPC handler)"}
        else:
            try:
                self._queue(encode({"id": request_id, "result": handler(op, kwargs)}))
                return
            except Exception as exc:
                # Never log the payload or the message: either may hold a secret.
                log.info("sandbox RPC %s failed with %s", op, type(exc).__name__)
                error = error_payload(exc)
        self._queue(encode({"id": request_id, "error": error}))

    def _queue(self, data: bytes) -> None:
        assert self.rpc is not None
        if not self.pending:
            self.sel.modify(self.rpc, selectors.EVENT_READ | selectors.EVENT_WRITE, "rpc")
        self.pending += data

    def _protocol_error(self, problem: str) -> None:
        if self.res.protocol_error is None:
            self.res.protocol_error = problem
            self._stop(graceful=False)

    def _drain(self) -> None:
        """After the child exited: what it wrote last is still in the pipe and the socket (read for at most
        DRAIN_S: a process that escaped the child's process group may hold the pipe and keep writing)."""
        stop_at = time.monotonic() + DRAIN_S
        if self.out_r is not None:
            while time.monotonic() < stop_at:
                try:
                    data = os.read(self.out_r, READ_CHUNK)
                except (BlockingIOError, OSError):
                    break
                if not data:
                    break
                self._take_output(data)
            self._forward_lines(b"", flush=True)
        if self.rpc is not None:
            while time.monotonic() < stop_at:
                try:
                    data = self.rpc.recv(READ_CHUNK)
                except (BlockingIOError, OSError):
                    break
                if not data:
                    break
                try:
                    messages = self.lines.feed(data)
                except ProtocolError as exc:
                    self.res.protocol_error = str(exc)
                    break
                for message in messages:
                    self._on_message(message, answer=False)

    def close(self) -> None:
        if self.server is not None and self.job_id is not None:
            self.server.forget(self.job_id)
        self.sel.close()
        if self.rpc is not None:
            self.rpc.close()
        if self.out_r is not None:
            os.close(self.out_r)
        self.inbox.close()
        if self.workdir is not None:
            _remove_tree(self.workdir)


def _spawn(template: Spawner | None, inbox: _Inbox, fds: list[int]) -> tuple[Spawner, int]:
    """Fork a job's child from `template`, or when there is none (or it is gone) from this process's fork
    server, started anew once if it died; the child of the fork server imports the DAG file itself."""
    if template is not None:
        try:
            return template, template.spawn(inbox, fds)
        except ServerDied:
            pass
    server = get_server()
    try:
        return server, server.spawn(inbox, fds)
    except ServerDied:  # it died since this process last used it
        server = get_server()
        return server, server.spawn(inbox, fds)


def _remove_tree(path: Path) -> None:
    """Remove a job's working directory, even parts the child made unwritable."""

    def retry_writable(function: Callable[..., Any], failed: str, _exc_info: Any) -> None:
        try:
            os.chmod(os.path.dirname(failed), 0o700)
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, 0o700)
                _remove_tree(Path(failed))
            else:
                function(failed)
        except OSError:
            pass

    shutil.rmtree(path, onerror=retry_writable)


os.register_at_fork(after_in_child=_after_fork_in_child)
