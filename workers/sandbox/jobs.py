"""The jobs a sandboxed child runs, once the sandbox is set up: this is where tenant code runs.

Each job returns a JSON-able result that the child sends to its parent as {"done": result}. Nothing here raises
for an error of tenant code: it becomes part of the result.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import Any

from workers.sandbox.child import Channel, RpcClient


def run(
    kind: str, payload: dict[str, Any], setup: dict[str, Any], channel: Channel, extra_fd: int | None = None
) -> Any:
    """Run one job of `kind` ("parse", "task", "trigger", "dag_callback", "trigger_host", "template";
    a template's control socket is `extra_fd`)."""
    from tradewind.sdk import execution

    if kind == "trigger_host":  # long-lived: it owns the channel (orders arrive while it runs)
        from workers.sandbox import triggerhost

        return triggerhost.serve(channel, _Bundle(setup))
    if kind == "template":
        if extra_fd is None:
            raise ValueError("a template needs its control socket")
        return _serve_template(payload["file"], _Bundle(setup), extra_fd)
    execution.set_client(RpcClient(channel))
    job = _JOBS[kind]
    if kind != "parse":
        signal.signal(signal.SIGTERM, _raise_terminated)
    return job(payload, _Bundle(setup))


class _Bundle:
    """The bundle root and how to show paths to the tenant (relative to the bundle, platform paths short)."""

    def __init__(self, setup: dict[str, Any]) -> None:
        self.root = setup["root"].rstrip("/")
        self.memory_mb = setup["limits"]["memory_mb"]
        self._hidden = sorted(
            {p.rstrip("/") for p in setup["sys_path"] if p and p.rstrip("/") != self.root},
            key=len,
            reverse=True,
        )

    def path(self, file: str) -> str:
        return os.path.join(self.root, file)

    def describe(self, exc: BaseException, context: str) -> tuple[str, str]:
        """(one-line message, traceback) for an exception raised by tenant code, paths made relative."""
        try:
            message = self._headline(exc, context)
            tb = _first_frame_in(exc.__traceback__, self.root + "/")
            text = "".join(traceback.format_exception(type(exc), exc, tb))
            return self._relative(message), self._relative(text)
        except MemoryError:
            return f"{type(exc).__name__} {context} (and out of memory while formatting it)", ""

    def _headline(self, exc: BaseException, context: str) -> str:
        if isinstance(exc, SystemExit):
            return f"sys.exit({exc.code!r}) was called {context}"
        if isinstance(exc, KeyboardInterrupt):
            return f"KeyboardInterrupt was raised {context}"
        if isinstance(exc, MemoryError):
            return f"MemoryError {context}: out of memory (memory limit {self.memory_mb} MB)"
        detail = str(exc)
        return f"{type(exc).__name__} {context}" + (f": {detail}" if detail else "")

    def _relative(self, text: str) -> str:
        text = text.replace(self.root + "/", "")
        for prefix in self._hidden:
            text = text.replace(f'File "{prefix}/', 'File "')
        return text


def _first_frame_in(tb: TracebackType | None, prefix: str) -> TracebackType | None:
    """The traceback from the first frame in the bundle on (the sandbox's and importlib's frames are noise)."""
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith(prefix):
        tb = tb.tb_next
    return tb


def _import(bundle: _Bundle, file: str) -> list[Any]:
    from tradewind.sdk.parsing import import_dag_file

    if file in _imported:  # a child of the template of this file: imported before the fork
        return _imported[file]
    return import_dag_file(bundle.path(file), root=bundle.root)


# The DAGs of the file this process is the template of (templates.py), by file.
_imported: dict[str, list[Any]] = {}


class TemplateRefused(BaseException):
    """Raised in tenant code that asks the platform for something while a template imports its file: the
    answer could differ from task to task, so such a file is imported afresh for every task instead. A
    BaseException, so that `except Exception` in the DAG file does not hide it."""


class _RefusingClient:
    """The execution client while a template imports: every request is refused (and remembered)."""

    asked: str | None = None

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            self.asked = self.asked or name
            raise TemplateRefused(f"{name} while the DAG file is imported")

        return refuse


def _serve_template(file: str, bundle: _Bundle, ctl_fd: int) -> dict[str, Any]:
    """Be the template of `file`: import it once, then fork a child per task from this process (so each task
    starts with the file already imported) until the parent closes the control socket. The file is not
    templated — "unusable", and every task imports it afresh — when its import fails, asks the platform for
    anything (Variable.get at the top level: the value could change between tasks) or leaves threads running
    (forking would copy them half-way)."""
    from tradewind.sdk import execution
    from tradewind.sdk.templater import warm_template_envs
    from workers.sandbox.protocol import send_control
    from workers.sandbox.server import ForkServer

    ctl = socket.socket(fileno=ctl_fd)
    client = _RefusingClient()
    execution.set_client(client)
    reason = None
    with _captured_output() as printed:
        try:
            dags = _import(bundle, file)
        except BaseException as exc:
            reason = f"importing it failed: {type(exc).__name__}"
    execution.set_client(None)
    if client.asked:
        reason = f"importing it calls {client.asked}"
    elif reason is None and threading.active_count() != 1:
        reason = "importing it starts threads"
    if reason is not None:
        send_control(ctl, {"event": "unusable", "reason": reason})
        return {"stopped": True}
    _imported[file] = dags
    warm_template_envs(dags)
    gc.collect()
    gc.freeze()  # the children's collections then leave the template's objects (and pages) alone
    send_control(ctl, {"event": "ready", "pid": os.getpid(), "output": printed.text})
    ForkServer(ctl).serve()
    return {"stopped": True}


# What a template replays of its import's output at the start of each task's (bounded: it travels in one
# control datagram, and JSON may spell a character in 6 bytes).
IMPORT_OUTPUT_CHARS = 8000


class _Printed:
    text = ""


@contextlib.contextmanager
def _captured_output() -> Iterator[_Printed]:
    """Send what is printed to stdout and stderr meanwhile to a memory file instead of the output pipe."""
    printed = _Printed()
    capture = os.memfd_create("tradewind-template-import")
    saved = [os.dup(1), os.dup(2)]
    os.dup2(capture, 1)
    os.dup2(capture, 2)
    try:
        yield printed
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        data = os.pread(capture, IMPORT_OUTPUT_CHARS * 4, 0)
        os.close(capture)
        printed.text = data.decode("utf-8", "replace")[:IMPORT_OUTPUT_CHARS]


def _parse(payload: dict[str, Any], bundle: _Bundle) -> dict[str, Any]:
    from tradewind.sdk.serialization import serialize_dag

    file = payload["file"]
    try:
        dags = _import(bundle, file)
    except BaseException as exc:
        message, text = bundle.describe(exc, f"while importing {file}")
        return {"dags": [], "error": f"{message}\n{text}".rstrip()}
    serialized = []
    for dag in dags:
        try:
            data = serialize_dag(dag)
        except BaseException as exc:
            message, text = bundle.describe(exc, f"while serializing DAG {getattr(dag, 'dag_id', '?')!r}")
            return {"dags": [], "error": f"{message}\n{text}".rstrip()}
        serialized.append(data)
    return {"dags": serialized, "error": None}


def _find_dag(bundle: _Bundle, file: str, dag_id: str) -> tuple[Any, dict[str, Any] | None]:
    """(the DAG, None) or (None, {"error", "traceback"}) when the file does not import or lacks the DAG."""
    try:
        dags = _import(bundle, file)
    except BaseException as exc:
        message, text = bundle.describe(exc, f"while importing {file}")
        return None, {"error": message, "traceback": text}
    for dag in dags:
        if getattr(dag, "dag_id", None) == dag_id:
            return dag, None
    return None, {"error": f"DAG {dag_id!r} is not defined in {file}", "traceback": None}


def _task(payload: dict[str, Any], bundle: _Bundle) -> dict[str, Any]:
    from tradewind.sdk.execution import run_task

    ti_info = payload["ti_info"]
    dag, problem = _find_dag(bundle, payload["file"], ti_info["dag_id"])
    if problem is not None:
        return {"state": "failed", **problem}
    try:
        return run_task(dag, ti_info["task_id"], ti_info)
    except BaseException as exc:  # run_task reports task errors itself; this is a failure of the runner
        message, text = bundle.describe(exc, f"while running task {ti_info['task_id']!r}")
        return {"state": "failed", "error": message, "traceback": text}


def _trigger(payload: dict[str, Any], bundle: _Bundle) -> dict[str, Any]:
    from tradewind.sdk.triggers import run_trigger

    try:
        return run_trigger(payload["classpath"], payload["kwargs"], payload["timeout_s"])
    except BaseException as exc:
        message, text = bundle.describe(exc, f"while running trigger {payload['classpath']}")
        return {"error": f"{message}\n{text}".rstrip()}


def _dag_callback(payload: dict[str, Any], bundle: _Bundle) -> dict[str, Any]:
    from tradewind.sdk.execution import run_dag_callback

    dag, problem = _find_dag(bundle, payload["file"], payload["dag_id"])
    if problem is not None:
        return problem
    try:
        result = run_dag_callback(dag, payload["kind"], payload["info"])
    except BaseException as exc:
        message, text = bundle.describe(exc, f"in the DAG's on_{payload['kind']} callback")
        return {"error": message, "traceback": text}
    if isinstance(result, dict):
        return {"error": None, "traceback": None, **result}
    return {"error": None, "traceback": None}


def _raise_terminated(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM (timeout or a kill by the platform) becomes an exception in the task, as in Airflow, so the
    runner can call on_kill and the failure callbacks within the grace period."""
    from tradewind.sdk.exceptions import AirflowTaskTerminated

    raise AirflowTaskTerminated("Task received SIGTERM signal")


_JOBS: dict[str, Callable[[dict[str, Any], _Bundle], Any]] = {
    "parse": _parse,
    "task": _task,
    "trigger": _trigger,
    "dag_callback": _dag_callback,
}
