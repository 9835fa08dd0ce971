"""The trigger host: one long-lived sandboxed child running many triggers on one asyncio loop (no database)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradewind.sdk.parsing import unique_module_name
from workers.sandbox import Limits, TriggerHost
from workers.sandbox.limits import tenant_ids

DAGS = Path(__file__).resolve().parents[1] / "dags" / "triggerer"
LIB = "triggers_lib"
TENANT = 23


class RunningHost:
    """A TriggerHost running in a thread, with everything it reported."""

    def __init__(
        self,
        root: Path = DAGS,
        tenant_id: int = TENANT,
        variables: dict | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.results: dict[str, dict] = {}
        self.output: dict[str, str] = {}
        self.requests: list[tuple] = []
        self.host_output = bytearray()
        self.variables = variables or {}
        self.changed = threading.Condition()
        self.host = TriggerHost(
            root,
            tenant_id=tenant_id,
            on_result=self._result,
            on_output=self._output,
            handler=self._handle,
            output=self.host_output.extend,
            limits=limits,
        )
        self.reason: str | None = "still running"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.reason = self.host.run()
        with self.changed:
            self.changed.notify_all()

    def _result(self, key: str, result: dict) -> None:
        with self.changed:
            self.results[key] = result
            self.changed.notify_all()

    def _output(self, key: str, text: str) -> None:
        with self.changed:
            self.output[key] = self.output.get(key, "") + text
            self.changed.notify_all()

    def _handle(self, key: str | None, op: str, kwargs: dict):
        self.requests.append((key, op, kwargs))
        if op == "get_variable":
            return self.variables.get(kwargs["key"])
        raise RuntimeError(f"{op} is not available in this test")

    def add(
        self, key: str, class_name: str, /, file: str | None = None, classpath: str | None = None, **kwargs
    ):
        self.host.add(key, classpath or f"{LIB}.{class_name}", kwargs, file=file)

    def wait_for(self, predicate, timeout: float = 20) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, timeout), (
                self.results,
                self.reason,
                bytes(self.host_output),
            )

    def stop(self) -> str | None:
        self.host.stop()
        self.thread.join(20)
        assert not self.thread.is_alive()
        return self.reason


def poll(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def out_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="tw-triggerhost-"))
    os.chmod(root, 0o777)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_many_triggers_run_concurrently_in_one_sandboxed_process():
    host = RunningHost()
    try:
        started = time.monotonic()
        for i in range(30):
            host.add(f"t{i}", "SleepTrigger", seconds=0.5, value=i)
        host.wait_for(lambda: len(host.results) == 30)
        elapsed = time.monotonic() - started
        payloads = [host.results[f"t{i}"]["event"] for i in range(30)]
        assert [p["value"] for p in payloads] == list(range(30))
        assert {p["pid"] for p in payloads} == {host.host.pid} and host.host.pid != os.getpid()
        ids = tenant_ids(TENANT)
        if ids is not None:
            assert {p["uid"] for p in payloads} == {ids[0]}
        assert elapsed < 5, elapsed  # concurrent: 30 half-second waits, not 15 s
    finally:
        assert host.stop() is None


def test_a_cancelled_trigger_reports_nothing_and_its_cleanup_runs(out_dir):
    host = RunningHost()
    try:
        marker = out_dir / "cleaned"
        host.add("waits", "CleanupTrigger", path=str(marker))
        host.add("quick", "SleepTrigger", seconds=0.3)
        host.wait_for(lambda: "quick" in host.results)
        host.host.cancel("waits")
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.read_text() == "cleaned up"
        assert "waits" not in host.results
    finally:
        assert host.stop() is None


def test_stop_cancels_the_triggers_left_with_their_cleanup(out_dir):
    host = RunningHost()
    marker = out_dir / "cleaned"
    host.add("waits", "CleanupTrigger", path=str(marker))
    poll(lambda: host.host.pid is not None)
    time.sleep(0.3)
    assert host.stop() is None
    assert marker.read_text() == "cleaned up"


def test_a_failing_trigger_reports_its_error_and_the_others_carry_on():
    host = RunningHost()
    try:
        host.add("boom", "BoomTrigger")
        host.add("fine", "SleepTrigger", seconds=0.3)
        host.add("missing", "NoSuchTrigger")
        host.wait_for(lambda: len(host.results) == 3)
        boom = host.results["boom"]
        assert "ValueError" in boom["error"] and "boom from the trigger" in boom["error"]
        assert "triggers_lib.py" in boom["traceback"] and "raise ValueError" in boom["traceback"]
        assert "NoSuchTrigger" in host.results["missing"]["error"]
        assert "event" in host.results["fine"]
    finally:
        assert host.stop() is None


def test_output_and_requests_are_attributed_to_the_trigger():
    host = RunningHost(variables={"greeting": "hello"})
    try:
        host.add("a", "ChattyTrigger", name="alpha")
        host.add("b", "ChattyTrigger", name="beta")
        host.add("v", "VariableTrigger", key="greeting")
        host.wait_for(lambda: len(host.results) == 3)
        host.wait_for(lambda: "logged by beta" in host.output.get("b", ""))
        assert "printed by alpha" in host.output["a"] and "logged by alpha" in host.output["a"]
        assert "self.log of alpha" in host.output["a"]
        assert "beta" not in host.output["a"] and "alpha" not in host.output["b"]
        assert host.results["v"] == {"event": "hello"}
        assert ("v", "get_variable", {"key": "greeting"}) in host.requests
    finally:
        assert host.stop() is None


def test_a_trigger_class_defined_in_a_dag_file_is_found():
    host = RunningHost()
    try:
        module = unique_module_name(str(DAGS.resolve() / "own_trigger.py"))
        host.add("own", "", file="own_trigger.py", classpath=f"{module}.CountdownTrigger", seconds=0.1)
        host.wait_for(lambda: "own" in host.results)
        assert host.results["own"] == {"event": {"counted": 0.1}}
    finally:
        assert host.stop() is None


def test_a_blocked_loop_stops_answering_pings():
    host = RunningHost(limits=Limits(kill_grace_s=0.5))
    try:
        host.host.ping(1)
        poll(lambda: host.host.last_pong == 1)
        host.add("block", "BlockingTrigger", seconds=3600)
        time.sleep(0.3)
        host.host.ping(2)
        time.sleep(1.0)
        assert host.host.last_pong == 1
    finally:
        host.host.kill()
        host.thread.join(20)
    assert "terminated by the platform" in (host.reason or "")


def test_a_trigger_that_kills_its_process_ends_the_host_with_the_reason():
    host = RunningHost()
    host.add("exit", "ExitTrigger")
    host.thread.join(20)
    assert host.reason is not None and "exited with status 3" in host.reason
    host.add("late", "SleepTrigger")  # an order to an ended host is dropped, not an error
