"""Resource limits of one sandboxed job, and the process-wide sandbox settings."""

from __future__ import annotations

import atexit
import dataclasses
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Limits:
    """What one sandboxed child may use; every job gets these unless the caller passes others.

    memory_mb      RLIMIT_AS: address space of the child and of each process it starts.
    cpu_s          RLIMIT_CPU (SIGXCPU, then SIGKILL 5 s later). None: the wall-clock timeout plus 5 s when
                   the job has one, otherwise no CPU limit.
    file_size_mb   RLIMIT_FSIZE: the largest file the child may write.
    nproc          RLIMIT_NPROC, counted in processes and threads. When the parent runs as root the child runs
                   under its tenant's own uid and this is the limit for that uid on this machine (all the
                   tenant's concurrent jobs share it). Otherwise it is a budget added to the number of tasks
                   the platform's uid already runs.
    open_files     RLIMIT_NOFILE.
    output_bytes   stdout+stderr cap. Parsing: the child is killed above it. Tasks: forwarding stops with one
                   "[output truncated at N bytes]" line; the output keeps being drained.
    rpc_message_bytes  the largest single message the child may send to its parent.
    kill_grace_s   time between SIGTERM and SIGKILL when a task, trigger or callback is stopped.
    """

    memory_mb: int = 1024
    cpu_s: int | None = None
    file_size_mb: int = 1024
    nproc: int = 256
    open_files: int = 1024
    output_bytes: int = 10 * 1024 * 1024
    rpc_message_bytes: int = 64 * 1024 * 1024
    kill_grace_s: float = 5.0

    def cpu_limit(self, timeout_s: float | None) -> int | None:
        """The RLIMIT_CPU soft limit in seconds for a job with this wall-clock timeout (None: unlimited)."""
        if self.cpu_s is not None:
            return self.cpu_s
        if timeout_s is None:
            return None
        return int(timeout_s) + 5

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, as sent to the child (every field is a plain value: no deep copy needed)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


@dataclass(frozen=True)
class SandboxConfig:
    """Process-wide settings of the sandbox (set once at start-up with configure()).

    uid_base   a child of tenant T runs as uid = gid = uid_base + T when the parent is root.
    tmp_root   where the private directory holding per-job working directories is created.
    """

    uid_base: int = 200000
    tmp_root: Path | None = None


_config = SandboxConfig()
_jobs_dir: Path | None = None
_jobs_dir_owner: int = 0
_jobs_dir_lock = threading.Lock()


def configure(*, uid_base: int = 200000, tmp_root: Path | None = None) -> None:
    """Set the process-wide sandbox settings; call before the first job."""
    global _config
    if uid_base <= 0:
        raise ValueError("uid_base must be a positive uid")
    _config = SandboxConfig(uid_base=uid_base, tmp_root=tmp_root)


def get_config() -> SandboxConfig:
    """The current process-wide settings."""
    return _config


def drops_privileges() -> bool:
    """True when children run under a per-tenant uid (the parent is root)."""
    return os.geteuid() == 0


def tenant_ids(tenant_id: int) -> tuple[int, int] | None:
    """(uid, gid) a child of this tenant runs as, or None when it keeps the parent's uid."""
    if not drops_privileges():
        return None
    if tenant_id < 0:
        raise ValueError(f"invalid tenant_id {tenant_id!r}")
    uid = _config.uid_base + tenant_id
    return uid, uid


def jobs_dir() -> Path:
    """This process's private directory for job working directories (created on first use).

    Mode 0711: a child's uid can reach its own working directory but cannot list its neighbours.
    """
    global _jobs_dir, _jobs_dir_owner
    with _jobs_dir_lock:
        if _jobs_dir is None or _jobs_dir_owner != os.getpid() or not _jobs_dir.is_dir():
            base = _config.tmp_root or Path(tempfile.gettempdir())
            base.mkdir(parents=True, exist_ok=True)
            _jobs_dir = Path(tempfile.mkdtemp(prefix=f"tradewind-sandbox-{os.getpid()}-", dir=base))
            os.chmod(_jobs_dir, 0o711)
            _jobs_dir_owner = os.getpid()
            atexit.register(_remove_jobs_dir, _jobs_dir, _jobs_dir_owner)
        return _jobs_dir


def _remove_jobs_dir(path: Path, owner: int) -> None:
    if os.getpid() == owner:
        try:
            path.rmdir()  # empty once every job is over; a job still running keeps it
        except OSError:
            pass
