"""The fork server: a clean interpreter that pre-imports the SDK and forks one child per sandboxed job.

The parent starts it with a fresh exec and a scrubbed environment (`python -m workers.sandbox.server FD`), so
it never holds the parent's memory or secrets. It never runs tenant code itself, and it is single-threaded
(a selector over the control socket and one pidfd per child) so that forking is safe. When the parent goes
away (end of the control socket) it kills every child's process group and exits.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import pkgutil
import select
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from workers.sandbox.protocol import ProtocolError, recv_control, send_control

log = logging.getLogger(__name__)

# Imported once here so every child starts with them loaded (fork shares the memory).
PRELOAD_MODULES = (
    "asyncio",
    "ctypes",
    "faulthandler",
    "json",
    "logging",
    "subprocess",
    "traceback",
    "uuid",
    "jinja2",
    "jinja2.nativetypes",
    "jinja2.sandbox",
    "pendulum",
    "croniter",
    "dateutil.parser",
    "dateutil.relativedelta",
    "jsonschema",
    "workers.sandbox.child",
    "workers.sandbox.jobs",
)
# Packages imported with all their submodules: the SDK and the Airflow compatibility layer.
PRELOAD_PACKAGES = ("tradewind.sdk", "airflow")
# The platform's own DAG, parsed once before the first fork so that the caches the SDK fills on first use
# are already filled in every child (it saves a child about a fifth of its parse time).
WARM_UP_DAG = """\
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator


def _work(**context):
    return context["ds"]


with DAG(
    dag_id="tradewind_sandbox_warm_up",
    start_date=datetime(2024, 1, 1),
    schedule="@daily",
    default_args={"owner": "tradewind", "retries": 1, "retry_delay": timedelta(minutes=5)},
    tags=["warm-up"],
):
    start = EmptyOperator(task_id="start")
    run = BashOperator(task_id="run", bash_command="echo {{ ds }}")
    work = PythonOperator(task_id="work", python_callable=_work)
    start >> run >> work
"""


class ForkServer:
    """The server loop: spawn and kill requests from the parent, exit reports from the children."""

    def __init__(self, ctl: socket.socket) -> None:
        self.ctl = ctl
        # epoll itself rather than a selector: a template runs this loop between forks, and every page it
        # touches then is copied from the task processes that share it.
        self.poll = select.epoll()
        self.children: dict[int, tuple[int, int]] = {}  # job id -> (pid, pidfd)
        self.jobs: dict[int, int] = {}  # pidfd -> job id

    def serve(self) -> None:
        """Run until the parent closes the control socket."""
        ctl = self.ctl.fileno()
        self.poll.register(ctl, select.EPOLLIN)
        while True:
            for fd, _events in self.poll.poll():
                if fd == ctl:
                    if not self._handle_request():
                        self._shutdown()
                        return
                else:
                    self._reap(self.jobs.pop(fd))

    def _handle_request(self) -> bool:
        try:
            received = recv_control(self.ctl)
        except ProtocolError:
            return True
        except OSError:
            return False
        if received is None:
            return False
        message, fds = received
        op = message.get("op")
        if op == "spawn":
            self._spawn(message.get("job"), fds)
            return True
        for fd in fds:
            os.close(fd)
        if op == "kill":
            self._kill(message.get("job"), message.get("signal"))
        else:
            log.warning("ignoring an unknown control request %r", op)
        return True

    def _spawn(self, job: Any, fds: list[int]) -> None:
        if not isinstance(job, int) or len(fds) not in (2, 3) or job in self.children:
            for fd in fds:
                os.close(fd)
            self._send({"event": "failed", "job": job, "error": "invalid spawn request"})
            return
        rpc_fd, out_fd, *extra = fds
        server_pid = os.getpid()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            self._send({"event": "failed", "job": job, "error": f"fork failed: {exc}"})
            return
        if pid == 0:
            try:
                from workers.sandbox import child

                child.main(rpc_fd, out_fd, server_pid, extra[0] if extra else None)
            finally:
                os._exit(70)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.poll.register(pidfd, select.EPOLLIN)
        self.jobs[pidfd] = job
        self.children[job] = (pid, pidfd)
        self._send({"event": "started", "job": job, "pid": pid})

    def _kill(self, job: Any, signum: Any) -> None:
        if job not in self.children or not isinstance(signum, int):
            return
        pid, _pidfd = self.children[job]
        _signal_group(pid, signum)

    def _reap(self, job: int) -> None:
        pid, pidfd = self.children.pop(job)
        self.poll.unregister(pidfd)
        os.close(pidfd)
        # The exited child is a zombie until reaped, so its pid (= its process group id) cannot have been
        # reused: whatever is left in its group (background processes, a fork bomb) dies with it.
        _signal_group(pid, signal.SIGKILL)
        _pid, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        exitcode, signum = (code, None) if code >= 0 else (None, -code)
        self._send({"event": "exited", "job": job, "pid": pid, "exitcode": exitcode, "signal": signum})

    def _send(self, message: dict[str, Any]) -> None:
        try:
            send_control(self.ctl, message)
        except OSError:
            pass  # the parent is gone: the next read sees the end of the socket

    def _shutdown(self) -> None:
        for pid, pidfd in self.children.values():
            _signal_group(pid, signal.SIGKILL)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            os.close(pidfd)
        self.children.clear()


def _signal_group(pid: int, signum: int) -> None:
    """Signal the child's process group, or the child alone if it has not called setsid() yet."""
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    except PermissionError:
        pass


def preload(modules: tuple[str, ...] = PRELOAD_MODULES, packages: tuple[str, ...] = PRELOAD_PACKAGES) -> None:
    """Import what children need, ignoring what is missing or broken (the child reports it if it matters)."""
    for name in modules:
        _try_import(name)
    for name in packages:
        package = _try_import(name)
        path = getattr(package, "__path__", None)
        if path is None:
            continue
        for info in pkgutil.walk_packages(path, prefix=f"{name}.", onerror=lambda _name: None):
            _try_import(info.name)


def warm_up() -> None:
    """Parse and serialize WARM_UP_DAG (platform code, not tenant code) and run its Python tasks once, then
    forget its module: what the SDK loads and caches on first use is then shared by every child instead of
    being loaded again in each."""
    sys.dont_write_bytecode = True
    try:
        from tradewind.sdk import execution
        from tradewind.sdk.parsing import import_dag_file
        from tradewind.sdk.serialization import serialize_dag

        with tempfile.TemporaryDirectory(prefix="tradewind-warm-up-") as folder:
            path = Path(folder) / "warm_up.py"
            path.write_text(WARM_UP_DAG)
            for dag in import_dag_file(str(path), root=folder):
                json.dumps(serialize_dag(dag))
                execution.set_client(_WarmUpClient())
                logging.disable(logging.INFO)  # the warm-up tasks' log lines are nobody's
                for task_id in WARM_UP_TASKS:
                    execution.run_task(dag, task_id, sample_ti_info(dag.dag_id, task_id))
            for name, module in list(sys.modules.items()):
                if getattr(module, "__file__", None) == str(path):
                    del sys.modules[name]
    except Exception as exc:  # a broken SDK must not stop the server; the children will report it
        log.warning("sandbox warm-up failed: %s: %s", type(exc).__name__, exc)
    finally:
        execution = sys.modules.get("tradewind.sdk.execution")
        if execution is not None:  # children install their own client; none may inherit this one
            execution.set_client(None)
        logging.disable(logging.NOTSET)
        sys.dont_write_bytecode = False


# The warm-up DAG's tasks run in the server (not the Bash one: it would start a process).
WARM_UP_TASKS = ("start", "work")


class _WarmUpClient:
    """The execution client of the warm-up tasks: accepts what they push, knows nothing."""

    def __getattr__(self, _name: str) -> Any:
        return lambda *_args, **_kwargs: None


def sample_ti_info(dag_id: str, task_id: str, **overrides: Any) -> dict[str, Any]:
    """A complete ti_info for a manual run on 2024-01-01, as the platform's runner builds it (the warm-up,
    benchmarks and tests use it; `overrides` replace keys)."""
    moment = "2024-01-01T00:00:00+00:00"
    info = {
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": "manual__2024-01-01T00:00:00+00:00",
        "map_index": -1,
        "try_number": 1,
        "max_tries": 0,
        "logical_date": moment,
        "data_interval_start": moment,
        "data_interval_end": moment,
        "run_after": moment,
        "start_date": moment,
        "ti_start_date": moment,
        "run_type": "manual",
        "conf": {},
        "external_trigger": True,
        "prev_data_interval_start_success": None,
        "prev_data_interval_end_success": None,
        "prev_start_date_success": None,
        "prev_end_date_success": None,
        "next_method": None,
        "next_kwargs": None,
        "first_try_start_date": None,
    }
    info.update(overrides)
    return info


def _try_import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # a broken module must not stop the server
        log.debug("preload of %s failed: %s", name, exc)
        return None


def main(argv: list[str]) -> int:
    """Entry point: `python -m workers.sandbox.server CONTROL_FD`."""
    from workers.sandbox import child

    child.prepare_streams()
    ctl = socket.socket(fileno=int(argv[1]))
    received = recv_control(ctl)
    if received is None:
        return 0
    init, _fds = received
    compat_dir = init["compat_dir"]
    sys.path[:] = [compat_dir, *[p for p in init["sys_path"] if p != compat_dir]]
    started = time.monotonic()
    preload()
    warm_up()
    if threading.active_count() != 1:
        log.warning("a preloaded module started a thread; forking may be unsafe")
    # Keep the preloaded objects out of the children's garbage collections, so that collecting in a child
    # does not touch (and copy) every page it shares with the server.
    gc.freeze()
    send_control(ctl, {"event": "ready", "pid": os.getpid(), "preload_s": time.monotonic() - started})
    ForkServer(ctl).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
