"""SubprocessHook: run a command (an argument list, no shell) and give its exit code and last output line."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from tradewind.sdk.connections import BaseHook


class SubprocessResult(NamedTuple):
    """What a finished command gave: its exit code and the last line of its combined stdout/stderr."""

    exit_code: int
    output: str


@contextlib.contextmanager
def working_directory(cwd: str | None = None) -> Iterator[str]:
    """`cwd` itself, or (when None) a fresh temporary folder removed on exit."""
    if cwd is not None:
        yield cwd
        return
    with tempfile.TemporaryDirectory(prefix="airflowtmp") as tmp:
        yield tmp


class SubprocessHook(BaseHook):
    """Airflow's SubprocessHook: `run_command` runs an argument list in its own session and streams each
    line of its output to the task log; `send_sigterm` signals that session (for an operator's on_kill).
    A non-zero exit code is returned, not raised: callers decide what it means."""

    def __init__(self, **kwargs: Any) -> None:
        self.sub_process: subprocess.Popen[bytes] | None = None
        super().__init__(**kwargs)

    def run_command(
        self,
        command: list[str],
        env: Mapping[str, str] | None = None,
        output_encoding: str = "utf-8",
        cwd: str | None = None,
    ) -> SubprocessResult:
        """Run `command` in `cwd` (None: a temporary folder removed afterwards) with `env` (None: this
        process's environment; an empty dict is an empty environment). Its process group is killed if
        this is interrupted (a task timeout)."""
        self.log.info("Tmp dir root location: %s", tempfile.gettempdir())
        with working_directory(cwd) as folder:
            self.log.info("Running command: %s", command)
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=folder,
                env=dict(env) if env is not None else None,
                start_new_session=True,
                # Gives back the default SIGPIPE disposition that Python ignores, as shell pipelines expect.
                restore_signals=True,
            )
            self.sub_process = process
            self.log.info("Output:")
            line = ""
            try:
                assert process.stdout is not None
                for raw in iter(process.stdout.readline, b""):
                    line = raw.decode(output_encoding, errors="backslashreplace").rstrip()
                    self.log.info("%s", line)
                process.wait()
            finally:
                if process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                process.stdout.close()
            self.log.info("Command exited with return code %s", process.returncode)
        return SubprocessResult(exit_code=process.returncode, output=line)

    def send_sigterm(self) -> None:
        """Send SIGTERM to the process group of the running command, if there is one."""
        self.log.info("Sending SIGTERM signal to process group")
        if self.sub_process is not None:
            # A command that already finished has no group left to signal.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(self.sub_process.pid), signal.SIGTERM)
