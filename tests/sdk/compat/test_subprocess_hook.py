"""SubprocessHook (`airflow.hooks.subprocess`) runs real processes as Airflow's does."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time

import pendulum
import pytest

BASH = shutil.which("bash")


@pytest.fixture
def hook():
    from airflow.hooks.subprocess import SubprocessHook

    return SubprocessHook()


def test_gives_the_exit_code_and_the_last_line_of_output(hook):
    result = hook.run_command([BASH, "-c", "echo first; printf 'last  \\n'"])
    assert result == (0, "last") and result.exit_code == 0 and result.output == "last"


def test_a_failing_command_is_returned_not_raised_and_stderr_is_merged(hook):
    result = hook.run_command([BASH, "-c", "echo out; echo err >&2; exit 3"])
    assert result.exit_code == 3 and result.output == "err"


def test_no_env_inherits_this_processs_environment_and_an_empty_one_is_empty(hook, monkeypatch):
    monkeypatch.setenv("TW_HOOK_PROBE", "inherited")
    command = [BASH, "-c", 'echo "${TW_HOOK_PROBE-unset}"']
    assert hook.run_command(command).output == "inherited"
    assert hook.run_command(command, env={}).output == "unset"
    assert hook.run_command(command, env={"TW_HOOK_PROBE": "given"}).output == "given"


def test_runs_in_a_temporary_folder_removed_afterwards_or_in_cwd(hook, tmp_path):
    folder = hook.run_command([BASH, "-c", "pwd"]).output
    assert os.path.basename(folder).startswith("airflowtmp")
    assert folder.startswith(os.path.realpath(tempfile.gettempdir())) and not os.path.exists(folder)
    assert hook.run_command([BASH, "-c", "pwd"], cwd=str(tmp_path)).output == os.path.realpath(tmp_path)


def test_output_is_decoded_with_output_encoding(hook):
    command = [BASH, "-c", "printf 'caf\\xe9\\n'"]
    assert hook.run_command(command, output_encoding="latin-1").output == "café"
    assert hook.run_command(command).output == "caf\\xe9"  # undecodable bytes are escaped, not an error


def test_send_sigterm_stops_the_running_command(hook):
    results = []
    runner = threading.Thread(target=lambda: results.append(hook.run_command(["sleep", "30"])))
    started = time.monotonic()
    runner.start()
    while hook.sub_process is None and time.monotonic() - started < 10:
        time.sleep(0.01)
    hook.send_sigterm()
    runner.join(10)
    assert results == [(-signal.SIGTERM, "")] and time.monotonic() - started < 10
    hook.send_sigterm()  # the command has finished: nothing left to signal


def test_a_custom_operator_built_on_the_hook_runs_in_a_dag(run, client):
    from airflow import DAG
    from airflow.exceptions import AirflowException
    from airflow.hooks.subprocess import SubprocessHook
    from airflow.models.baseoperator import BaseOperator

    class WordCountOperator(BaseOperator):
        template_fields = ("text",)

        def __init__(self, *, text: str, **kwargs):
            super().__init__(**kwargs)
            self.text = text
            self.hook = SubprocessHook()

        def execute(self, context):
            result = self.hook.run_command([BASH, "-c", 'echo "$TEXT" | wc -w'], env={"TEXT": self.text})
            if result.exit_code != 0:
                raise AirflowException(f"wc failed with {result.exit_code}")
            return int(result.output)

        def on_kill(self):
            self.hook.send_sigterm()

    with DAG("hook_dag", start_date=pendulum.datetime(2024, 1, 1), schedule="@daily") as dag:
        WordCountOperator(task_id="count", text="{{ ds }} is a Tuesday")

    outcome = run(dag, "count")
    assert outcome["state"] == "success", outcome["traceback"]
    assert client.xcoms[("hook_dag", client.run_id, "count", -1, "return_value")] == 4
