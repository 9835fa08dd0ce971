"""Templates: a sandboxed process per (tenant, bundle version, DAG file) that has imported the file once and
forks a child per task from there.

Forking from the fork server costs a task child the import of its DAG file (and the page faults of doing it
in a fresh copy) every time; a template pays that once. The template is a job of the fork server like any
other — the tenant's uid, its limits — that imports the file and then serves the same control protocol as
the fork server (server.ForkServer), so a task's child is spawned, signalled and reaped exactly as one of
the fork server's. Each task still runs in a process of its own.

A file whose import fails, asks the platform for anything (top-level Variable.get: the answer may change
between tasks) or starts threads is not templated: its tasks import it afresh, as before. What the import
printed is replayed at the start of every task's output, as if the task had imported the file itself.
Templates are per process (like the fork server); one idle for TEMPLATE_IDLE_S is stopped.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from workers.sandbox.limits import Limits
from workers.sandbox.parent import JobSpec, SandboxError, Spawner, run_job

log = logging.getLogger(__name__)

TEMPLATE_IDLE_S = 60.0
MAX_TEMPLATES = 8
IMPORT_WAIT_S = 30.0

TemplateKey = tuple[int, str, str, tuple[Any, ...]]


class Template(Spawner):
    """One template process and the parent's end of its control socket."""

    def __init__(self, root: Path, file: str, *, tenant_id: int, limits: Limits) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        super().__init__(mine)
        self.file = file
        self.unusable: str | None = None
        self.import_output = b""
        self.last_used = time.monotonic()
        self._spec = JobSpec(
            kind="template",
            payload={"file": file},
            root=root,
            tenant_id=tenant_id,
            limits=limits,
            timeout_s=None,
            extra_fd=theirs.detach(),
        )
        self.start_reader(f"sandbox-template-{file}")
        self._job = threading.Thread(target=self._run, name=f"sandbox-template-job-{file}", daemon=True)
        self._job.start()

    @property
    def usable(self) -> bool:
        return self.alive and self.ready.is_set() and self.unusable is None

    def stop(self) -> None:
        """End the template (the children it forked are killed with it: stop only an idle one)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def join(self, timeout_s: float) -> None:
        """Wait until the template process has exited."""
        self._job.join(timeout_s)

    def on_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "unusable":
            self.unusable = str(event.get("reason") or "unusable")
        self.import_output = str(event.get("output") or "").encode()
        self.ready.set()

    def _run(self) -> None:
        try:
            res = run_job(self._spec)
        except Exception:  # never leave waiters hanging
            log.exception("a sandbox template failed", extra={"file": self.file})
        else:
            if res.sandbox_error is not None:
                log.warning("sandbox template of %s: %s", self.file, res.sandbox_error)
        self.stop()
        self.ready.set()


_templates: dict[TemplateKey, Template] = {}
_unusable: set[TemplateKey] = set()
_lock = threading.Lock()
_janitor_started = False


def template_for(root: Path, file: str, *, tenant_id: int, limits: Limits) -> Template | None:
    """The ready template of this file for this tenant (started and awaited if needed), or None when the
    file is not templated: the caller's child then imports the file itself."""
    key: TemplateKey = (tenant_id, str(root), file, tuple(sorted(limits.to_dict().items())))
    with _lock:
        if key in _unusable:
            return None
        template = _templates.get(key)
        if template is None or not template.alive:
            _make_room()
            try:
                template = _templates[key] = Template(root, file, tenant_id=tenant_id, limits=limits)
            except (OSError, SandboxError):
                log.warning("could not start a sandbox template", exc_info=True)
                return None
            _start_janitor()
        template.last_used = time.monotonic()
    if not template.ready.wait(IMPORT_WAIT_S):
        template.unusable = f"importing it takes longer than {IMPORT_WAIT_S:g} s"
        template.stop()
    if not template.usable:
        if template.unusable is not None:
            log.info("%s is imported by every task: %s", file, template.unusable)
            with _lock:
                _unusable.add(key)
                _templates.pop(key, None)
        return None
    return template


def stop_all(timeout_s: float = 10) -> None:
    """Stop every template of this process and wait (up to `timeout_s`) until they have exited."""
    with _lock:
        templates = list(_templates.values())
        _templates.clear()
        _unusable.clear()
    for template in templates:
        template.stop()
    deadline = time.monotonic() + timeout_s
    for template in templates:
        template.join(max(0.0, deadline - time.monotonic()))


def _make_room() -> None:
    """Below MAX_TEMPLATES: stop the least recently used idle template (called with _lock held)."""
    if len(_templates) < MAX_TEMPLATES:
        return
    idle = [(t.last_used, key) for key, t in _templates.items() if t.running_jobs() == 0]
    if idle:
        _templates.pop(min(idle)[1]).stop()


def _stop_idle() -> None:
    now = time.monotonic()
    with _lock:
        for key, template in list(_templates.items()):
            if not template.alive or (
                template.running_jobs() == 0 and now - template.last_used > TEMPLATE_IDLE_S
            ):
                _templates.pop(key).stop()


def _start_janitor() -> None:
    global _janitor_started
    if _janitor_started:
        return
    _janitor_started = True

    def sweep() -> None:
        while True:
            time.sleep(TEMPLATE_IDLE_S / 4)
            _stop_idle()

    threading.Thread(target=sweep, name="sandbox-template-janitor", daemon=True).start()


def _after_fork_in_child() -> None:
    """In a forked copy of this process the templates are not ours (as with the fork server): start afresh."""
    global _lock, _janitor_started
    _lock = threading.Lock()
    _templates.clear()
    _unusable.clear()
    _janitor_started = False


os.register_at_fork(after_in_child=_after_fork_in_child)
