"""The sandboxed child: set up the sandbox right after the fork server forks, then run one job.

Order matters: own session and descriptors first (nothing of the server's may leak into tenant code), then the
job spec from the parent, then environment, working directory, limits and the tenant's uid, and only then the
job itself (jobs.py), which is the first point where tenant code runs.
"""

from __future__ import annotations

import ctypes
import faulthandler
import itertools
import logging
import os
import resource
import signal
import socket
import sys
import threading
import traceback
from typing import Any, NoReturn

from workers.sandbox.protocol import ProtocolError, decode, encode, rebuild_error

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
M_ARENA_MAX = -8
MALLOC_ARENAS = 2
EXIT_SETUP_FAILED = 70
LOG_FORMAT = "[%(asctime)s] {%(filename)s:%(lineno)d} %(levelname)s - %(message)s"

_libc = ctypes.CDLL(None, use_errno=True)


class Channel:
    """The child's end of the RPC socket: blocking request/reply, safe to use from several threads."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._owner = os.getpid()

    def read(self) -> dict[str, Any]:
        """The next message from the parent."""
        scanned = 0
        while (end := self._buffer.find(b"\n", scanned)) < 0:
            scanned = len(self._buffer)
            data = self._sock.recv(1 << 20)
            if not data:
                raise ConnectionError("the sandbox parent closed the RPC channel")
            self._buffer += data
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return decode(line)

    def send(self, message: dict[str, Any]) -> None:
        """Send one message to the parent."""
        self._sock.sendall(encode(message))

    def call(self, op: str, **kwargs: Any) -> Any:
        """Ask the parent; return its result or raise the error its handler raised."""
        if os.getpid() != self._owner:
            raise RuntimeError(f"{op} is not available in a process forked by the task")
        with self._lock:
            request_id = next(self._ids)
            try:
                data = encode({"id": request_id, "op": op, "kwargs": kwargs})
            except (TypeError, ValueError) as exc:
                raise TypeError(f"{op}: the value is not JSON-serializable: {exc}") from None
            self._sock.sendall(data)
            reply = self.read()
        if reply.get("id") != request_id:
            raise ProtocolError(f"{op}: reply to another request")
        if "error" in reply:
            raise rebuild_error(reply["error"])
        return reply.get("result")

    def finish(self, result: Any) -> None:
        """Send the job's result, once, from the child itself (a copy forked by tenant code just exits)."""
        if os.getpid() != self._owner:
            os._exit(0)
        self.send({"done": result})


class RpcClient:
    """tradewind.sdk.execution.Client implemented by asking the parent over the RPC channel."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def xcom_push(self, *, key: str, value: Any) -> None:
        self._channel.call("xcom_push", key=key, value=value)

    def xcom_pull(
        self,
        *,
        dag_id: str,
        run_id: str,
        task_ids: list[str] | None,
        key: str,
        map_indexes: list[int] | None,
        include_prior_dates: bool = False,
    ) -> list[dict]:
        return self._channel.call(
            "xcom_pull",
            dag_id=dag_id,
            run_id=run_id,
            task_ids=task_ids,
            key=key,
            map_indexes=map_indexes,
            include_prior_dates=include_prior_dates,
        )

    def get_variable(self, key: str) -> str | None:
        return self._channel.call("get_variable", key=key)

    def set_variable(self, key: str, value: str) -> None:
        self._channel.call("set_variable", key=key, value=value)

    def get_connection(self, conn_id: str) -> dict | None:
        return self._channel.call("get_connection", conn_id=conn_id)

    def mask_secret(self, value: str) -> None:
        self._channel.call("mask_secret", value=value)

    def trigger_dag_run(
        self, *, dag_id: str, run_id: str | None, conf: dict, logical_date: str | None, reset_dag_run: bool
    ) -> dict:
        return self._channel.call(
            "trigger_dag_run",
            dag_id=dag_id,
            run_id=run_id,
            conf=conf,
            logical_date=logical_date,
            reset_dag_run=reset_dag_run,
        )

    def get_dag_run_state(self, *, dag_id: str, run_id: str) -> str | None:
        return self._channel.call("get_dag_run_state", dag_id=dag_id, run_id=run_id)

    def count_task_states(
        self,
        *,
        dag_id: str,
        task_ids: list[str] | None,
        task_group_id: str | None,
        logical_dates: list[str],
        states: list[str],
    ) -> int:
        return self._channel.call(
            "count_task_states",
            dag_id=dag_id,
            task_ids=task_ids,
            task_group_id=task_group_id,
            logical_dates=logical_dates,
            states=states,
        )

    def count_dag_runs(self, *, dag_id: str, logical_dates: list[str], states: list[str]) -> int:
        return self._channel.call("count_dag_runs", dag_id=dag_id, logical_dates=logical_dates, states=states)

    def get_asset_events(
        self, *, uri: str | None = None, name: str | None = None, alias: str | None = None
    ) -> list[dict]:
        return self._channel.call("get_asset_events", uri=uri, name=name, alias=alias)

    def get_asset(self, *, name: str) -> dict | None:
        return self._channel.call("get_asset", name=name)

    def task_url(self) -> str:
        return self._channel.call("task_url")


def main(rpc_fd: int, out_fd: int, server_pid: int, extra_fd: int | None = None) -> NoReturn:
    """Run in the freshly forked child: sandbox, run the job, report, exit. Never returns. `extra_fd` is a
    descriptor the job keeps (a template's control socket)."""
    me = os.getpid()
    code = EXIT_SETUP_FAILED
    channel: Channel | None = None
    try:
        os.setsid()
        _isolate_descriptors(rpc_fd, out_fd, extra_fd)
        channel = Channel(socket.socket(fileno=rpc_fd))
        job = channel.read()["job"]
        setup = job["setup"]
        _enter_sandbox(setup, server_pid)
        from workers.sandbox import jobs

        result = jobs.run(job["kind"], job["payload"], setup, channel, extra_fd)
        channel.finish(result)
        code = 0
    except BaseException as exc:
        if os.getpid() == me:
            try:
                traceback.print_exc()
                if channel is not None:
                    channel.send({"internal_error": f"{type(exc).__name__}: {exc}"})
            except BaseException:
                pass
    finally:
        if os.getpid() != me:
            os._exit(0)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(code)


def _isolate_descriptors(rpc_fd: int, out_fd: int, extra_fd: int | None) -> None:
    """stdin from /dev/null, stdout and stderr to the output pipe, every other inherited descriptor but the
    RPC socket and `extra_fd` closed (the server's control socket and the pidfds of other tenants' children
    among them)."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    top = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if top == resource.RLIM_INFINITY or top > 1 << 20:
        top = 1 << 20
    low = 3
    for keep in sorted({rpc_fd} | ({extra_fd} if extra_fd is not None else set())):
        os.closerange(low, keep)
        low = keep + 1
    os.closerange(low, top)


def _enter_sandbox(setup: dict[str, Any], server_pid: int) -> None:
    os.chdir(setup["workdir"])
    os.environ.clear()
    os.environ.update(setup["env"])
    ids = setup.get("ids")
    _apply_limits(setup["limits"], setup.get("cpu_s"), per_uid=ids is not None)
    if ids is not None and (os.getuid(), os.getgid()) != tuple(ids):  # a template's child already is
        uid, gid = ids
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    # RLIMIT_AS counts reserved address space, and glibc reserves 64 MB per malloc arena, up to 8 per CPU:
    # without this a 32-thread pool would exhaust a 1 GB limit while using a few MB.
    _libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    # Set after the uid change, which clears it: if the fork server dies, its children die with it.
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server_pid:
        os._exit(EXIT_SETUP_FAILED)
    sys.path[:] = setup["sys_path"]
    sys.argv[:] = ["tradewind-sandbox"]
    sys.dont_write_bytecode = True  # a bundle version is immutable: no __pycache__ in it


def prepare_streams() -> None:
    """Done once in the fork server, inherited by every child: line-buffered stdout/stderr, a Python stack
    on stderr when the process crashes, and log records (Airflow's format) on stderr. In a child, stderr is
    the output pipe; in the server it is the platform's stderr."""
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    faulthandler.enable(file=sys.stderr, all_threads=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(stream)
    root.setLevel(logging.INFO)


def _apply_limits(limits: dict[str, Any], cpu_s: int | None, *, per_uid: bool) -> None:
    mb = 1024 * 1024
    _set_limit(resource.RLIMIT_AS, limits["memory_mb"] * mb)
    _set_limit(resource.RLIMIT_FSIZE, limits["file_size_mb"] * mb)
    _set_limit(resource.RLIMIT_NOFILE, limits["open_files"])
    _set_limit(resource.RLIMIT_CORE, 0)
    if cpu_s is not None:
        # The soft limit sends SIGXCPU; the hard limit 5 s later SIGKILL.
        _set_limit(resource.RLIMIT_CPU, cpu_s, cpu_s + 5)
    nproc = limits["nproc"] if per_uid else _count_tasks(os.getuid()) + limits["nproc"]
    _set_limit(resource.RLIMIT_NPROC, nproc)


def _set_limit(which: int, soft: int, hard: int | None = None) -> None:
    """Set the soft and hard limit (the hard one defaults to the soft one), never above the current hard
    limit unless we are root (who alone may raise it)."""
    hard = soft if hard is None else hard
    _current_soft, current_hard = resource.getrlimit(which)
    if os.geteuid() != 0 and current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(which, (soft, hard))


def _count_tasks(uid: int) -> int:
    """Processes and threads owned by `uid` (what RLIMIT_NPROC counts)."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                count += len(os.listdir(f"/proc/{entry.name}/task"))
        except OSError:
            pass
    return count


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl({option}) failed: {os.strerror(errno)}")
