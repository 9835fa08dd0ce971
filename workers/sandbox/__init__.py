"""The sandbox that runs tenant code (DAG file parsing, tasks, triggers, DAG callbacks) in child processes.

Pure Python, no Django: the platform calls the functions below from its scheduler and worker processes.
"""

from workers.sandbox.api import (
    FileResult,
    TriggerHost,
    failed_outcome,
    fork_server_pid,
    parse_files,
    prestart,
    run_dag_callback,
    run_task,
    run_trigger,
)
from workers.sandbox.limits import Limits, configure
from workers.sandbox.parent import RpcHandler, SandboxError, send, terminate

__all__ = [
    "FileResult",
    "Limits",
    "RpcHandler",
    "SandboxError",
    "TriggerHost",
    "configure",
    "failed_outcome",
    "fork_server_pid",
    "parse_files",
    "prestart",
    "run_dag_callback",
    "run_task",
    "run_trigger",
    "send",
    "terminate",
]
