"""The sandbox's public API for the platform: parse DAG files, run tasks, triggers and DAG callbacks, each in a
sandboxed child process. Pure Python (no Django); the caller answers the child's requests with its handler."""

from __future__ import annotations

import os
import signal
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any, TypedDict

from workers.sandbox import templates
from workers.sandbox.limits import Limits, tenant_ids
from workers.sandbox.parent import (
    JobResult,
    JobSpec,
    RpcHandler,
    SandboxError,
    get_server,
    run_job,
    send,
    terminate,
)

OutputCallback = Callable[[bytes], None]
StartCallback = Callable[[int], None]
LAST_OUTPUT_CHARS = 2000
# Tasks fork from a template of their DAG file (templates.py) rather than import it themselves.
TEMPLATES = True
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGFPE}


class FileResult(TypedDict):
    """The outcome of parsing one file: its serialized DAGs, or an import error (message + traceback)."""

    dags: list[dict[str, Any]]
    error: str | None
    duration_ms: int


def prestart(timeout_s: float = 60) -> float | None:
    """Start this process's fork server now rather than on the first job; return its preload time in
    seconds (None if it did not report ready within `timeout_s`)."""
    server = get_server()
    server.ready.wait(timeout_s)
    return server.preload_s


def fork_server_pid() -> int:
    """The pid of this process's fork server, starting it if needed (for diagnostics and tests)."""
    return get_server().pid


def parse_files(
    root: Path,
    files: list[str],
    *,
    tenant_id: int,
    handler: RpcHandler | None = None,
    timeout_s: float = 30,
    limits: Limits | None = None,
    parallelism: int | None = None,
) -> dict[str, FileResult]:
    """Parse each file (a path relative to the bundle `root`) in its own sandboxed child, `parallelism` at a
    time (default: the number of CPUs). Every file gets a result: whatever one file does (loop forever,
    exhaust memory, fork-bomb, exit, crash, print gigabytes) only fails that file, with an error saying why.
    `handler` answers top-level Variable.get and the like; without one they raise a clear error."""
    limits = limits or Limits()
    root = Path(root).resolve()
    _grant_bundle_access(root, tenant_id)
    workers = max(1, parallelism or len(os.sched_getaffinity(0)))

    def parse_one(file: str) -> FileResult:
        problem = _bad_relative_path(file)
        if problem is not None:
            return {"dags": [], "error": problem, "duration_ms": 0}
        spec = JobSpec(
            kind="parse",
            payload={"file": file},
            root=root,
            tenant_id=tenant_id,
            limits=limits,
            timeout_s=timeout_s,
            handler=handler,
            kill_on_output_limit=True,
            terminate_first=False,
        )
        res = run_job(spec)
        return _file_result(res, file, limits, timeout_s)

    unique = list(dict.fromkeys(files))
    if len(unique) <= 1 or workers == 1:
        return {file: parse_one(file) for file in unique}
    with ThreadPoolExecutor(
        max_workers=min(workers, len(unique)), thread_name_prefix="sandbox-parse"
    ) as pool:
        return dict(zip(unique, pool.map(parse_one, unique), strict=True))


def run_task(
    root: Path,
    file: str,
    ti_info: dict[str, Any],
    *,
    tenant_id: int,
    handler: RpcHandler,
    output: OutputCallback,
    timeout_s: float | None,
    limits: Limits | None = None,
    on_start: StartCallback | None = None,
) -> dict[str, Any]:
    """Run one try of one task in a sandboxed child and return its outcome (tradewind.sdk.execution.run_task's
    shape). The child's requests go to `handler(op, kwargs)`, its output to `output`, its pid to `on_start`.
    A child that dies without an outcome gives a failed outcome naming the cause; past `timeout_s` the child's
    process group gets SIGTERM, then SIGKILL, and the outcome is failed ("execution_timeout of N s exceeded")."""
    limits = limits or Limits()
    root = Path(root).resolve()
    problem = _bad_relative_path(file)
    if problem is not None:
        return failed_outcome(problem)
    _grant_bundle_access(root, tenant_id)
    template = templates.template_for(root, file, tenant_id=tenant_id, limits=limits) if TEMPLATES else None
    if template is not None and template.import_output:
        output(template.import_output)
    spec = JobSpec(
        kind="task",
        payload={"file": file, "ti_info": ti_info},
        root=root,
        tenant_id=tenant_id,
        limits=limits,
        timeout_s=timeout_s,
        handler=handler,
        output=output,
        on_start=on_start,
        env=_airflow_ctx_env(ti_info),
        spawner=template,
    )
    res = run_job(spec)
    reported = _valid(res, lambda r: isinstance(r.get("state"), str), "an invalid task outcome")
    outcome = {**failed_outcome(None), **res.result} if reported else failed_outcome(None)
    if res.timed_out:
        return {
            **outcome,
            "state": "failed",
            "error": f"execution_timeout of {_seconds(timeout_s)} s exceeded",
        }
    if res.cancelled:
        return {**outcome, "state": "failed", "error": "the task was terminated by the platform"}
    if not reported:
        outcome["error"] = _death(res, limits, "while running the task", timeout_s)
    return outcome


def run_trigger(
    root: Path,
    classpath: str,
    kwargs: dict[str, Any],
    *,
    tenant_id: int,
    handler: RpcHandler,
    output: OutputCallback,
    timeout_s: float | None,
    limits: Limits | None = None,
    on_start: StartCallback | None = None,
) -> dict[str, Any]:
    """Run a trigger (tradewind.sdk.execution.run_trigger) in a sandboxed child until its first event:
    {"event": payload} or {"error": message}. The trigger's own timeout is `timeout_s`; the child is killed
    `limits.kill_grace_s` after it if it has not reported by then."""
    limits = limits or Limits()
    root = Path(root).resolve()
    _grant_bundle_access(root, tenant_id)
    wall = None if timeout_s is None else timeout_s + limits.kill_grace_s
    spec = JobSpec(
        kind="trigger",
        payload={"classpath": classpath, "kwargs": kwargs, "timeout_s": timeout_s},
        root=root,
        tenant_id=tenant_id,
        limits=limits,
        timeout_s=wall,
        handler=handler,
        output=output,
        on_start=on_start,
    )
    res = run_job(spec)
    if _valid(res, lambda r: "event" in r or "error" in r, "an invalid trigger result"):
        return res.result
    if res.timed_out:
        return {"error": f"trigger timed out after {_seconds(timeout_s)} s"}
    return {"error": _death(res, limits, "while running the trigger", wall)}


class TriggerHost:
    """A long-lived sandboxed child of one tenant that runs many triggers of one bundle version at once, on one
    asyncio loop (triggerhost.py), so that waiting tasks cost a coroutine each, not a process each.

    `run()` starts the child and blocks for its whole life (call it in a thread of its own); it returns None
    when the host stopped because `stop()` asked it to, else why it ended (killed, crashed, ...). `add()`,
    `cancel()`, `ping()` and `stop()` may be called from any thread, before the child started too. Each
    trigger's first event or error goes to `on_result(key, {"event": payload} | {"error", "traceback"})`, what
    it logs or prints to `on_output(key, text)`, and requests of tenant code (Variable.get, ...) to
    `handler(key, op, kwargs)` with the key of the trigger that asked (None outside any trigger: the caller
    must check that a key it is given is one it added to this host). These callbacks run on the thread that
    runs `run()`; output of the host outside any trigger goes to `output`."""

    def __init__(
        self,
        root: Path,
        *,
        tenant_id: int,
        on_result: Callable[[str, dict[str, Any]], None],
        on_output: Callable[[str, str], None],
        handler: Callable[[str | None, str, dict[str, Any]], Any],
        output: OutputCallback,
        limits: Limits | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.tenant_id = tenant_id
        self.limits = limits or Limits()
        self._on_result = on_result
        self._on_output = on_output
        self._handler = handler
        self._output = output
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._ended = False
        self._stop_requested = False
        self._unsent: list[dict[str, Any]] = []
        self.last_pong: int | None = None

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs."""
        return self._pid

    def run(self) -> str | None:
        """Run the host until it ends: None when asked to stop, else the reason it ended."""
        from workers.sandbox.triggerhost import TRIGGER_KEY

        def handle(op: str, kwargs: dict[str, Any]) -> Any:
            if op == "trigger_event":
                key = str(kwargs.pop("key", ""))
                self._on_result(key, kwargs if "event" in kwargs else {"traceback": None, **kwargs})
            elif op == "trigger_output":
                self._on_output(str(kwargs.get("key", "")), str(kwargs.get("data", "")))
            elif op == "trigger_pong":
                self.last_pong = kwargs.get("n")
            else:
                key = kwargs.pop(TRIGGER_KEY, None)
                return self._handler(None if key is None else str(key), op, kwargs)
            return None

        try:
            _grant_bundle_access(self.root, self.tenant_id)
        except SandboxError as exc:
            self._end()
            return f"the sandbox failed while starting the trigger host: {exc}"
        spec = JobSpec(
            kind="trigger_host",
            payload={},
            root=self.root,
            tenant_id=self.tenant_id,
            limits=self.limits,
            timeout_s=None,
            handler=handle,
            output=self._output,
            on_start=self._started,
        )
        res = run_job(spec)
        self._end()
        if res.done and isinstance(res.result, dict) and "stopped" in res.result:
            return None
        if res.cancelled and self._stop_requested:
            return None
        return _death(res, self.limits, "while running triggers", None)

    def add(self, key: str, classpath: str, kwargs: dict[str, Any], *, file: str | None = None) -> None:
        """Start a trigger (`classpath(**kwargs)`, kwargs as serialized); `file` is the DAG file (relative to
        the bundle) that deferred, where a trigger class defined in it is found."""
        self._order({"op": "add", "key": key, "classpath": classpath, "kwargs": kwargs, "file": file})

    def cancel(self, key: str) -> None:
        """Stop a trigger (its cleanup runs); nothing is reported for it."""
        self._order({"op": "cancel", "key": key})

    def ping(self, n: int) -> None:
        """Ask the host's loop to answer; `last_pong` becomes `n` when it does (a blocked loop never does)."""
        self._order({"op": "ping", "n": n})

    def stop(self) -> None:
        """Ask the host to cancel its triggers and end; it is killed if it has not ended `limits.kill_grace_s`
        later."""
        with self._lock:
            self._stop_requested = True
        self._order({"op": "stop"})
        timer = threading.Timer(self.limits.kill_grace_s, self.kill)
        timer.daemon = True
        timer.start()

    def kill(self) -> None:
        """Terminate the child now (SIGTERM, SIGKILL after the grace period)."""
        pid = self._pid
        if pid is not None:
            terminate(pid)

    def _order(self, order: dict[str, Any]) -> None:
        with self._lock:
            if self._ended:
                return
            if self._pid is None:
                self._unsent.append(order)
                return
            send(self._pid, {"push": order})

    def _started(self, pid: int) -> None:
        with self._lock:
            self._pid = pid
            for order in self._unsent:
                send(pid, {"push": order})
            self._unsent.clear()

    def _end(self) -> None:
        with self._lock:
            self._ended = True
            self._pid = None
            self._unsent.clear()


def run_dag_callback(
    root: Path,
    file: str,
    dag_id: str,
    kind: str,
    info: dict[str, Any],
    *,
    tenant_id: int,
    handler: RpcHandler,
    output: OutputCallback,
    timeout_s: float | None = 300,
    limits: Limits | None = None,
    on_start: StartCallback | None = None,
) -> dict[str, Any]:
    """Run a DAG's on_success/on_failure callback (`kind` "success" or "failure") in a sandboxed child:
    {"error": None, "traceback": None} when it ran, else the error and its traceback."""
    if kind not in ("success", "failure"):
        raise ValueError(f"unknown DAG callback kind {kind!r}")
    limits = limits or Limits()
    root = Path(root).resolve()
    problem = _bad_relative_path(file)
    if problem is not None:
        return {"error": problem, "traceback": None}
    _grant_bundle_access(root, tenant_id)
    spec = JobSpec(
        kind="dag_callback",
        payload={"file": file, "dag_id": dag_id, "kind": kind, "info": info},
        root=root,
        tenant_id=tenant_id,
        limits=limits,
        timeout_s=timeout_s,
        handler=handler,
        output=output,
        on_start=on_start,
    )
    res = run_job(spec)
    if _valid(res, lambda r: "error" in r, "an invalid callback result"):
        return {"traceback": None, **res.result}
    return {"error": _death(res, limits, "while running the DAG callback", timeout_s), "traceback": None}


def failed_outcome(error: str | None, traceback: str | None = None) -> dict[str, Any]:
    """A complete task outcome for a try that failed before or outside the task's own code."""
    return {
        "state": "failed",
        "error": error,
        "traceback": traceback,
        "fail_fast": False,
        "reschedule_date": None,
        "trigger": None,
        "followed": None,
        "skip_downstream": None,
        "asset_events": [],
        "rendered_fields": {},
        "map_index_label": None,
        "callbacks_run": [],
    }


def _valid(res: JobResult, check: Callable[[dict[str, Any]], bool], problem: str) -> bool:
    """True when the child reported a result of the expected shape; a malformed one is a protocol error."""
    if not res.done:
        return False
    if isinstance(res.result, dict) and check(res.result):
        return True
    res.protocol_error = problem
    return False


def _file_result(res: JobResult, file: str, limits: Limits, timeout_s: float) -> FileResult:
    duration_ms = int(res.duration_s * 1000)
    phase = f"while importing {file}"
    if res.output_exceeded:
        error = f"output limit of {_megabytes(limits.output_bytes)} exceeded {phase}; the process was killed"
        return {"dags": [], "error": error, "duration_ms": duration_ms}
    if _valid(res, _is_parse_result, "an invalid parse result"):
        dags, error = res.result["dags"], res.result["error"]
        return {"dags": dags if error is None else [], "error": error, "duration_ms": duration_ms}
    return {"dags": [], "error": _death(res, limits, phase, timeout_s), "duration_ms": duration_ms}


def _is_parse_result(result: dict[str, Any]) -> bool:
    dags, error = result.get("dags"), result.get("error")
    return isinstance(dags, list) and all(isinstance(d, dict) for d in dags) and isinstance(error, str | None)


def _death(res: JobResult, limits: Limits, phase: str, timeout_s: float | None) -> str:
    """Why a child ended without a result, in words a DAG author understands, plus its last output."""
    if res.sandbox_error is not None:
        reason = f"the sandbox failed {phase}: {res.sandbox_error}"
    elif res.protocol_error is not None:
        reason = f"the process was killed {phase}: it broke the sandbox protocol ({res.protocol_error})"
    elif res.timed_out:
        reason = f"timed out after {_seconds(timeout_s)} s {phase}; the process was killed"
    elif res.cancelled:
        reason = f"terminated by the platform {phase}"
    elif res.signal is not None:
        reason = _signal_reason(res.signal, limits, phase, timeout_s)
    elif res.exitcode is not None:
        reason = (
            f"the process exited with status {res.exitcode} {phase} without reporting a result "
            "(os._exit(), or sys.exit() outside the main thread?)"
        )
    else:
        reason = f"the process ended {phase} without reporting a result"
    tail = res.output_tail.decode("utf-8", "replace")[-LAST_OUTPUT_CHARS:].strip()
    return f"{reason}\nLast output:\n{tail}" if tail else reason


def _signal_reason(signum: int, limits: Limits, phase: str, timeout_s: float | None) -> str:
    name = _signal_name(signum)
    if signum == signal.SIGKILL:
        return f"killed by SIGKILL {phase}: memory limit {limits.memory_mb} MB or CPU time limit exceeded?"
    if signum == signal.SIGXCPU:
        return f"CPU time limit of {limits.cpu_limit(timeout_s)} s exceeded {phase} (SIGXCPU)"
    if signum == signal.SIGXFSZ:
        return f"file size limit of {limits.file_size_mb} MB exceeded {phase} (SIGXFSZ)"
    if signum == signal.SIGSEGV:
        return f"crashed with SIGSEGV (segmentation fault) {phase}"
    if signum in CRASH_SIGNALS:
        return f"crashed with {name} {phase}"
    return f"killed by {name} {phase}"


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


def _bad_relative_path(file: str) -> str | None:
    path = PurePosixPath(file)
    if not file or path.is_absolute() or ".." in path.parts:
        return f"{file!r} is not a path inside the bundle"
    return None


def _airflow_ctx_env(ti_info: dict[str, Any]) -> dict[str, str]:
    """The AIRFLOW_CTX_* variables Airflow exports to a running task's environment."""
    names = {
        "AIRFLOW_CTX_DAG_ID": ti_info.get("dag_id"),
        "AIRFLOW_CTX_TASK_ID": ti_info.get("task_id"),
        "AIRFLOW_CTX_DAG_RUN_ID": ti_info.get("run_id"),
        "AIRFLOW_CTX_TRY_NUMBER": ti_info.get("try_number"),
        "AIRFLOW_CTX_LOGICAL_DATE": ti_info.get("logical_date"),
        "AIRFLOW_CTX_EXECUTION_DATE": ti_info.get("logical_date"),
    }
    return {name: str(value) for name, value in names.items() if value is not None}


_granted: set[tuple[str, int]] = set()
_granted_lock = threading.Lock()


def _grant_bundle_access(root: Path, tenant_id: int) -> None:
    """When children run under the tenant's uid, make the bundle readable by them: entries that others cannot
    read get the tenant's group with group read (and search) permission. Once per bundle root and tenant;
    bundle versions are immutable. SandboxError when a directory above the bundle cannot be searched."""
    ids = tenant_ids(tenant_id)
    if ids is None:
        return
    _check_platform_readable()
    gid = ids[1]
    key = (str(root), gid)
    with _granted_lock:
        if key in _granted:
            return
    if not root.is_dir():
        raise SandboxError(f"the bundle root {root} is not a directory")
    for ancestor in root.parents:
        if not ancestor.stat().st_mode & stat.S_IXOTH:
            raise SandboxError(
                f"sandboxed processes cannot reach the bundle {root}: {ancestor} is not searchable by others"
            )
    for directory, dirnames, filenames in os.walk(root):
        _grant(Path(directory), gid, is_dir=True)
        for name in filenames:
            _grant(Path(directory) / name, gid, is_dir=False)
        dirnames[:] = [d for d in dirnames if not (Path(directory) / d).is_symlink()]
    with _granted_lock:
        _granted.add(key)


_platform_checked = False


def _check_platform_readable() -> None:
    """Children under a tenant uid must be able to read Python and the platform's code; say so plainly
    when they cannot (e.g. a Python installed under a private home directory) instead of failing later
    with a puzzling ImportError or LookupError in tenant code."""
    global _platform_checked
    if _platform_checked:
        return
    import sysconfig

    from workers.sandbox.parent import platform_sys_path

    for entry in [sysconfig.get_paths()["stdlib"], *platform_sys_path()]:
        path = Path(entry)
        for directory in [path, *path.parents]:
            if directory.exists() and not directory.stat().st_mode & stat.S_IXOTH:
                raise SandboxError(
                    f"sandboxed processes cannot read {path}: {directory} is not searchable by others. "
                    "Install Python and the platform where other users can read them (`make` builds .venv "
                    "from /usr/bin/python3.11 when it exists)."
                )
    _platform_checked = True


def _grant(path: Path, gid: int, *, is_dir: bool) -> None:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        return
    needed_other = (stat.S_IROTH | stat.S_IXOTH) if is_dir else stat.S_IROTH
    if st.st_mode & needed_other == needed_other:
        return
    needed_group = (stat.S_IRGRP | stat.S_IXGRP) if is_dir else stat.S_IRGRP
    os.chown(path, -1, gid)
    os.chmod(path, stat.S_IMODE(st.st_mode) | needed_group)
