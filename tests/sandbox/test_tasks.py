"""Running tasks, DAG callbacks and triggers in sandboxed children, talking to a real parent-side handler."""

from __future__ import annotations

import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from workers.sandbox import Limits, run_dag_callback, run_task, run_trigger, terminate

from .conftest import DAGS, FakePlatform, pid_alive, ti_info

TENANT = 17
DAG_ID = "sandbox_behaviours"


def run(task_id: str, platform: FakePlatform | None = None, **kwargs) -> tuple[dict, bytes]:
    platform = platform or FakePlatform()
    info = ti_info(DAG_ID, task_id)
    output = bytearray()
    outcome = run_task(
        DAGS,
        "task_behaviours.py",
        info,
        tenant_id=TENANT,
        handler=platform.handler_for(info),
        output=output.extend,
        timeout_s=kwargs.pop("timeout_s", 30),
        **kwargs,
    )
    return outcome, bytes(output)


def test_tasks_exchange_xcoms_through_the_parent():
    platform = FakePlatform()
    produced, _ = run("produce", platform)
    consumed, output = run("consume", platform)
    assert produced["state"] == consumed["state"] == "success"
    assert b"consumed {'rows': 3, 'names': ['a', 'b']}" in output
    run_id = ti_info(DAG_ID, "x")["run_id"]
    assert platform.xcoms[(run_id, "consume", "return_value", -1)] == 6
    assert (
        "xcom_pull",
        {
            "dag_id": DAG_ID,
            "run_id": run_id,
            "task_ids": ["produce"],
            "key": "return_value",
            "map_indexes": [-1],
        },
    ) in platform.calls or any(op == "xcom_pull" for op, _ in platform.calls)


def test_on_start_gets_the_child_pid_and_the_child_is_sandboxed():
    platform = FakePlatform()
    pids = []
    outcome, _ = run("report", platform, on_start=pids.append)
    assert outcome["state"] == "success"
    seen = platform.xcoms[(ti_info(DAG_ID, "x")["run_id"], "report", "return_value", -1)]
    assert pids == [seen["pid"]] and seen["pid"] != os.getpid()
    assert "DATABASE_URL" not in seen["env"]
    assert "AIRFLOW_CTX_DAG_ID" in seen["env"]
    if os.geteuid() == 0:
        assert seen["uid"] == 200000 + TENANT


def test_a_handler_error_is_raised_in_the_task():
    outcome, _ = run("read_secret", FakePlatform({"api_password": "FORBIDDEN"}))
    assert outcome["state"] == "failed"
    assert "PermissionError" in outcome["error"] and "not readable by this DAG" in outcome["error"]


def test_execution_timeout_kills_the_task_and_its_subprocesses():
    started = time.monotonic()
    outcome, output = run("spawn_and_hang", timeout_s=1)
    assert time.monotonic() - started < 5
    assert outcome["state"] == "failed"
    assert outcome["error"] == "execution_timeout of 1 s exceeded"
    grandchild = int(re.search(rb"grandchild=(\d+)", output).group(1))
    deadline = time.monotonic() + 3
    while pid_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(grandchild)


def test_a_task_ignoring_sigterm_is_killed_after_the_grace_period():
    started = time.monotonic()
    outcome, output = run("ignore_sigterm_and_hang", timeout_s=1, limits=Limits(kill_grace_s=0.5))
    assert time.monotonic() - started < 5
    assert outcome["error"] == "execution_timeout of 1 s exceeded"
    grandchild = int(re.search(rb"grandchild=(\d+)", output).group(1))
    deadline = time.monotonic() + 3
    while pid_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(grandchild)


def test_a_crashing_task_gives_a_failed_outcome_naming_the_cause():
    outcome, _ = run("crash")
    assert outcome["state"] == "failed"
    assert outcome["error"].startswith("the process exited with status 5 while running the task")
    assert outcome["asset_events"] == [] and outcome["fail_fast"] is False


def test_task_output_is_forwarded_in_whole_lines_and_capped():
    chunks = []
    info = ti_info(DAG_ID, "chatter")
    outcome = run_task(
        DAGS,
        "task_behaviours.py",
        info,
        tenant_id=TENANT,
        handler=FakePlatform().handler_for(info),
        output=chunks.append,
        timeout_s=30,
        limits=Limits(output_bytes=1024 * 1024),
    )
    output = b"".join(chunks)
    assert outcome["state"] == "success"
    assert output.endswith(b"\n[output truncated at 1048576 bytes]\n")
    assert 1024 * 1024 <= len(output) < 1024 * 1024 + 100
    # whole lines only, so the platform's masking never sees a secret cut in two (but the cut-off one)
    assert all(chunk.endswith(b"\n") for chunk in chunks[:-2])


def test_a_missing_dag_or_a_broken_file_fails_the_task_clearly():
    platform = FakePlatform()
    info = ti_info("no_such_dag", "t")
    common = {
        "tenant_id": TENANT,
        "handler": platform.handler_for(info),
        "output": lambda _: None,
        "timeout_s": 30,
    }
    outcome = run_task(DAGS, "task_behaviours.py", info, **common)
    assert outcome["state"] == "failed"
    assert outcome["error"] == "DAG 'no_such_dag' is not defined in task_behaviours.py"
    outcome = run_task(DAGS, "missing_import.py", info, **common)
    assert outcome["error"].startswith("ModuleNotFoundError while importing missing_import.py")
    assert 'File "missing_import.py", line 3' in outcome["traceback"]


def test_the_platform_can_terminate_a_running_task():
    pids = []
    result = {}
    worker = threading.Thread(target=lambda: result.update(outcome=run("hang", on_start=pids.append)[0]))
    worker.start()
    deadline = time.monotonic() + 5
    while not pids and time.monotonic() < deadline:
        time.sleep(0.01)
    assert terminate(pids[0]) is True
    worker.join(10)
    assert result["outcome"]["state"] == "failed"
    assert result["outcome"]["error"] == "the task was terminated by the platform"
    assert terminate(pids[0]) is False


def test_tasks_run_concurrently_from_threads():
    platform = FakePlatform()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda t: run(t, platform)[0], ["produce", "report", "chatter", "produce"]))
    assert [o["state"] for o in outcomes] == ["success"] * 4
    assert time.monotonic() - started < 10


def test_dag_failure_callback_runs_in_the_sandbox():
    output = bytearray()
    platform = FakePlatform()
    info = ti_info(DAG_ID, "crash", reason="task_failure")
    result = run_dag_callback(
        DAGS,
        "task_behaviours.py",
        DAG_ID,
        "failure",
        info,
        tenant_id=TENANT,
        handler=platform.handler_for(info),
        output=output.extend,
    )
    assert result["error"] is None
    assert b"dag failure callback ran: task_failure" in output


def test_a_trigger_runs_until_its_event():
    platform = FakePlatform()
    moment = "2020-01-01T00:00:00+00:00"
    result = run_trigger(
        DAGS,
        "tradewind.sdk.triggers.DateTimeTrigger",
        {"moment": moment},
        tenant_id=TENANT,
        handler=platform.handler_for(ti_info(DAG_ID, "x")),
        output=lambda _: None,
        timeout_s=10,
    )
    assert "event" in result, result
