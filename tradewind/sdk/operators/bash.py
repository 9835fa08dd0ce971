"""BashOperator: run a bash command in a subprocess; its last line of output is the task's XCom."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import tempfile
from collections.abc import Callable, Collection, Container, Mapping, Sequence
from typing import Any

from tradewind.sdk.baseoperator import BaseOperator
from tradewind.sdk.context import context_to_airflow_vars
from tradewind.sdk.exceptions import AirflowException, AirflowSkipException

log = logging.getLogger(__name__)


class BashResult:
    """What a finished bash command gave: its exit code and the last line of its output."""

    def __init__(self, exit_code: int, output: str) -> None:
        self.exit_code = exit_code
        self.output = output


def run_bash(
    command: str, *, env: Mapping[str, str] | None, cwd: str | None = None, output_encoding: str = "utf-8"
) -> BashResult:
    """Run `bash -c command`, streaming each line of its combined stdout/stderr to the task log. Runs in
    `cwd` or a fresh temporary folder. The process group is killed if this is interrupted (a timeout)."""
    with tempfile.TemporaryDirectory(prefix="airflowtmp") as tmp:
        process = subprocess.Popen(
            ["bash", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd or tmp,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            # Python ignores SIGPIPE; shell pipelines (`yes | head`) expect the default, which Popen's
            # restore_signals (on by default) gives back. No preexec_fn: without one Popen can vfork
            # instead of copying this whole process.
            restore_signals=True,
        )
        last_line = ""
        try:
            assert process.stdout is not None
            for raw in iter(process.stdout.readline, b""):
                line = raw.decode(output_encoding, errors="backslashreplace").rstrip("\n")
                last_line = line
                log.info("%s", line)
            process.wait()
        finally:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()
        log.info("Command exited with return code %s", process.returncode)
        return BashResult(process.returncode, last_line)


class BashOperator(BaseOperator):
    """Runs `bash_command` with bash (a `.sh`/`.bash` name is rendered from the template file). Exit code 0:
    success, the last output line (through `output_processor`) is the XCom; an exit code in
    `skip_on_exit_code` (99 by default): skipped; any other: AirflowException."""

    template_fields: Collection[str] = ("bash_command", "env", "cwd")
    template_fields_renderers = {"bash_command": "bash", "env": "json"}
    template_ext: Sequence[str] = (".sh", ".bash")
    ui_color = "#f0ede4"

    def __init__(
        self,
        *,
        bash_command: str | Any,
        env: dict[str, str] | None = None,
        append_env: bool = False,
        output_encoding: str = "utf-8",
        skip_exit_code: int | None = None,
        skip_on_exit_code: int | Container[int] | None = 99,
        cwd: str | None = None,
        output_processor: Callable[[str], Any] = lambda result: result,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = env
        self.append_env = append_env
        self.output_encoding = output_encoding
        if skip_exit_code is not None:
            skip_on_exit_code = skip_exit_code
        if skip_on_exit_code is None:
            self.skip_on_exit_code: Container[int] = []
        elif isinstance(skip_on_exit_code, int):
            self.skip_on_exit_code = [skip_on_exit_code]
        else:
            self.skip_on_exit_code = skip_on_exit_code
        self.cwd = cwd
        self.output_processor = output_processor

    def get_env(self, context: Mapping[str, Any]) -> dict[str, str]:
        """The command's environment: `env` (plus the inherited one with `append_env`), or the task's own
        environment when `env` is None; Airflow's AIRFLOW_CTX_* variables always."""
        system_env = os.environ.copy()
        env = self.env
        if env is None:
            env = system_env
        elif self.append_env:
            system_env.update(env)
            env = system_env
        env = {str(key): str(value) for key, value in env.items()}
        env.update(context_to_airflow_vars(context))
        return env

    def execute(self, context: Any) -> Any:
        """Run the command; see the class docstring for what the exit code means."""
        if self.cwd is not None:
            if not os.path.exists(self.cwd):
                raise AirflowException(f"Can not find the cwd: {self.cwd}")
            if not os.path.isdir(self.cwd):
                raise AirflowException(f"The cwd {self.cwd} must be a directory")
        if not isinstance(self.bash_command, str) or not self.bash_command.strip():
            raise AirflowException("bash_command must be a non-empty string")
        result = run_bash(
            self.bash_command, env=self.get_env(context), cwd=self.cwd, output_encoding=self.output_encoding
        )
        if result.exit_code in self.skip_on_exit_code:
            raise AirflowSkipException(f"Bash command returned exit code {result.exit_code}. Skipping.")
        if result.exit_code != 0:
            raise AirflowException(
                f"Bash command failed. The command returned a non-zero exit code {result.exit_code}."
            )
        return self.output_processor(result.output)

    def on_kill(self) -> None:
        """Nothing to do: run_bash kills its process group when interrupted."""
