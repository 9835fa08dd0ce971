"""The sandbox that runs tenant code (DAG file parsing, tasks, triggers, DAG callbacks) in child processes.

Pure Python, no Django: the platform calls the functions below from its scheduler and worker processes.
"""

from workers.sandbox.api import (
    FileResult,
    failed_outcome,
    fork_server_pid,
    parse_files,
    prestart,
    run_dag_callback,
    run_task,
    run_trigger,
)
from workers.sandbox.limits import Limits, configure
from workers.sandbox.parent import RpcHandler, SandboxError, terminate

__all__ = [
    "FileResult",
    "Limits",
    "RpcHandler",
    "SandboxError",
    "configure",
    "failed_outcome",
    "fork_server_pid",
    "parse_files",
    "prestart",
    "run_dag_callback",
    "run_task",
    "run_trigger",
    "terminate",
]
