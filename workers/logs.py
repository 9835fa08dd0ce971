"""Task log storage: one log per task-instance try, masked before it is written, readable while it grows.

The default store keeps files under settings.LOG_ROOT:
    <tenant_id>/<dag_id>/<run_id>/<task_id>[<map_index>]/<try_number>.log
and a DAG run's own callbacks next to its task folders, in `_dag_callbacks/on_<kind>.log`. Another store (S3,
GCS, ...) is a subclass named by the dotted path in settings.TRADEWIND_LOG_STORE.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.module_loading import import_string

from scheduler.models import NO_MAP_INDEX, DagRun, TaskInstance

if TYPE_CHECKING:
    from tradewind.secrets.masking import Masker

# A line longer than this is written (masked) in pieces rather than held back until its end.
MAX_PENDING_BYTES = 64 * 1024
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+:=@,")


def path_component(value: str) -> str:
    """`value` as one safe file-name component: characters outside a small safe set become %XX, and the
    names "." and ".." cannot occur, so no dag_id or run_id reaches outside its folder."""
    text = "".join(ch if ch in _SAFE else "".join(f"%{b:02X}" for b in ch.encode()) for ch in value)
    if text in {"", ".", ".."}:
        text = "".join(f"%{b:02X}" for b in value.encode()) or "%00"
    return text


class LogWriter:
    """Appends one log's output: bytes are split into lines, each line masked and written and flushed at
    once, so a reader following the file sees every complete line as soon as the task prints it."""

    def __init__(self, path: Path, masker: Masker | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._masker = masker
        self._file = open(path, "ab")  # noqa: SIM115  (closed by close())
        self._pending = bytearray()
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        """Take more output; complete lines are masked and written now, a partial line waits for its end."""
        with self._lock:
            self._pending += data
            end = self._pending.rfind(b"\n")
            if end >= 0:
                self._emit(bytes(self._pending[: end + 1]))
                del self._pending[: end + 1]
            elif len(self._pending) > MAX_PENDING_BYTES:
                self._emit(bytes(self._pending))
                self._pending.clear()

    def line(self, text: str) -> None:
        """Write one line of the platform's own (e.g. "Starting attempt 1 of 3"), masked like the rest."""
        self.write(f"{text}\n".encode())

    def close(self) -> None:
        """Write what is left of a last unterminated line and close the file."""
        with self._lock:
            if self._file.closed:
                return
            if self._pending:
                self._emit(bytes(self._pending))
                self._pending.clear()
            self._file.close()

    def _emit(self, data: bytes) -> None:
        if self._masker is not None:
            data = self._masker.mask_bytes(data)
        self._file.write(data)
        self._file.flush()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LogStore:
    """Where task logs live: files under settings.LOG_ROOT. Subclasses store them elsewhere."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or settings.LOG_ROOT)

    def task_path(self, ti: TaskInstance, try_number: int) -> Path:
        """The file of one try of `ti` (it may not exist yet)."""
        run = ti.dag_run
        folder = ti.task_id if ti.map_index == NO_MAP_INDEX else f"{ti.task_id}[{ti.map_index}]"
        return self._run_folder(run) / path_component(folder) / f"{int(try_number)}.log"

    def dag_callback_path(self, run: DagRun, kind: str) -> Path:
        """The file of a run's DAG-level on_success/on_failure callback."""
        return self._run_folder(run) / "_dag_callbacks" / f"on_{path_component(kind)}.log"

    def writer(self, ti: TaskInstance, try_number: int, *, masker: Masker | None = None) -> LogWriter:
        """An appending writer for one try's log; output goes through `masker` before it is stored."""
        return LogWriter(self.task_path(ti, try_number), masker)

    def dag_callback_writer(self, run: DagRun, kind: str, *, masker: Masker | None = None) -> LogWriter:
        """An appending writer for the log of a run's DAG-level callback."""
        return LogWriter(self.dag_callback_path(run, kind), masker)

    def read(self, ti: TaskInstance, try_number: int, offset: int = 0, limit: int | None = None) -> bytes:
        """Up to `limit` bytes of one try's log from byte `offset` on (b"" when there is nothing (yet)).
        Follow a running task by calling again with offset + len(previous result)."""
        return _read(self.task_path(ti, try_number), offset, limit)

    def read_dag_callback(self, run: DagRun, kind: str, offset: int = 0, limit: int | None = None) -> bytes:
        """Like read(), for a run's DAG-level callback log."""
        return _read(self.dag_callback_path(run, kind), offset, limit)

    def size(self, ti: TaskInstance, try_number: int) -> int:
        """How many bytes one try's log holds so far."""
        try:
            return self.task_path(ti, try_number).stat().st_size
        except FileNotFoundError:
            return 0

    def tail(self, ti: TaskInstance, try_number: int, lines: int = 20) -> str:
        """The last `lines` lines of one try's log, decoded (invalid UTF-8 replaced)."""
        size = self.size(ti, try_number)
        chunk = self.read(ti, try_number, offset=max(0, size - 64 * 1024))
        return "\n".join(chunk.decode("utf-8", "replace").splitlines()[-lines:])

    def delete_tenant(self, tenant_id: int) -> None:
        """Remove every log of a tenant (used when an ephemeral tenant goes away)."""
        shutil.rmtree(self.root / str(int(tenant_id)), ignore_errors=True)

    def _run_folder(self, run: DagRun) -> Path:
        return (
            self.root / str(int(run.tenant_id)) / path_component(run.dag.dag_id) / path_component(run.run_id)
        )


def _read(path: Path, offset: int, limit: int | None) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, offset), os.SEEK_SET)
            return handle.read(-1 if limit is None else max(0, limit))
    except FileNotFoundError:
        return b""


def get_log_store() -> LogStore:
    """The configured log store (settings.TRADEWIND_LOG_STORE, a dotted path to a LogStore subclass)."""
    return _store(settings.TRADEWIND_LOG_STORE, str(settings.LOG_ROOT))


@functools.cache
def _store(dotted_path: str, root: str) -> LogStore:
    store_class = import_string(dotted_path)
    if not (isinstance(store_class, type) and issubclass(store_class, LogStore)):
        raise TypeError(f"TRADEWIND_LOG_STORE={dotted_path!r} is not a workers.logs.LogStore subclass")
    return store_class(Path(root))
