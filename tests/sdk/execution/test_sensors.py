"""Sensors: poke loop, reschedule, timeout, soft_fail, deferral and resumption, and the concrete sensors."""

from __future__ import annotations

import datetime
import threading

import pendulum
import pytest

from tradewind.sdk.dag import DAG
from tradewind.sdk.execution import decode_value
from tradewind.sdk.sensors.base import BaseSensorOperator, PokeReturnValue
from tradewind.sdk.sensors.bash import BashSensor
from tradewind.sdk.sensors.date_time import DateTimeSensor, DateTimeSensorAsync
from tradewind.sdk.sensors.external_task import ExternalTaskMarker, ExternalTaskSensor
from tradewind.sdk.sensors.filesystem import FileSensor
from tradewind.sdk.sensors.python import PythonSensor
from tradewind.sdk.sensors.time import TimeSensor
from tradewind.sdk.sensors.time_delta import TimeDeltaSensor, TimeDeltaSensorAsync
from tradewind.sdk.triggers import run_trigger

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def make_dag() -> DAG:
    return DAG("test_dag", schedule="@daily", start_date=START)


def counter(done_at: int, result=True):
    calls = []

    def poke():
        calls.append(1)
        return result if len(calls) >= done_at else False

    return poke, calls


def test_poke_mode_loops_until_done_and_pushes_poke_return_value(client, run):
    poke, calls = counter(3, PokeReturnValue(True, xcom_value={"found": 3}))
    with make_dag() as dag:
        PythonSensor(task_id="task", python_callable=poke, poke_interval=0.01, timeout=5)
    outcome = run(dag, "task")
    assert outcome["state"] == "success" and len(calls) == 3
    assert client.xcoms[("test_dag", client.run_id, "task", -1, "return_value")] == {"found": 3}


def test_timeout_fails_without_retry_and_soft_fail_skips(client, run):
    with make_dag() as dag:
        PythonSensor(task_id="hard", python_callable=lambda: False, poke_interval=0.01, timeout=0.05)
        PythonSensor(
            task_id="soft", python_callable=lambda: False, poke_interval=0.01, timeout=0.05, soft_fail=True
        )
    outcome = run(dag, "hard")
    assert (outcome["state"], outcome["fail_fast"]) == ("failed", True)
    assert "Sensor has timed out" in outcome["error"]
    assert run(dag, "soft")["state"] == "skipped"


def test_poke_errors_silent_fail_and_never_fail(client, run):
    def broken():
        raise ValueError("flaky")

    with make_dag() as dag:
        PythonSensor(task_id="loud", python_callable=broken, poke_interval=0.01)
        PythonSensor(
            task_id="silent", python_callable=broken, poke_interval=0.01, timeout=0.05, silent_fail=True
        )
        PythonSensor(task_id="never", python_callable=broken, poke_interval=0.01, never_fail=True)
    assert "flaky" in run(dag, "loud")["error"]
    assert "Sensor has timed out" in run(dag, "silent")["error"]
    assert run(dag, "never")["state"] == "skipped"


def test_reschedule_mode_returns_up_for_reschedule_and_times_out_from_the_first_try(client, run):
    with make_dag() as dag:
        PythonSensor(
            task_id="task", python_callable=lambda: False, mode="reschedule", poke_interval=30, timeout=600
        )
    before = pendulum.now("UTC")
    outcome = run(dag, "task", first_try_start_date=before.isoformat())
    assert outcome["state"] == "up_for_reschedule"
    moment = pendulum.parse(outcome["reschedule_date"])
    assert before.add(seconds=29) <= moment <= pendulum.now("UTC").add(seconds=31)
    late = run(dag, "task", first_try_start_date=before.subtract(seconds=601).isoformat())
    assert (late["state"], late["fail_fast"]) == ("failed", True)


def test_exponential_backoff_grows_and_respects_max_wait():
    with make_dag():
        sensor = PythonSensor(
            task_id="task",
            python_callable=lambda: False,
            poke_interval=10,
            exponential_backoff=True,
            max_wait=35,
        )
    started = datetime.datetime.now(datetime.UTC)
    intervals = [sensor._get_next_poke_interval(started, lambda: 0.0, n) for n in (1, 2, 3)]
    assert 10 <= intervals[0] < 20 and 20 <= intervals[1] <= 35 and intervals[2] == 35


def test_invalid_sensor_arguments():
    with make_dag():
        with pytest.raises(Exception, match="mode must be one of"):
            PythonSensor(task_id="a", python_callable=bool, mode="sometimes")
        with pytest.raises(Exception, match="non-negative"):
            PythonSensor(task_id="b", python_callable=bool, poke_interval=-1)
        with pytest.raises(ValueError, match="mutually exclusive"):
            PythonSensor(task_id="c", python_callable=bool, soft_fail=True, never_fail=True)


def test_deferrable_sensor_defers_then_resumes_after_the_trigger(client, run):
    soon = pendulum.now("UTC").add(seconds=0.2)
    with make_dag() as dag:
        DateTimeSensorAsync(task_id="task", target_time=soon.isoformat())
        DateTimeSensor(
            task_id="deferrable", target_time="{{ data_interval_end.add(years=50) }}", deferrable=True
        )
        DateTimeSensorAsync(task_id="soft", target_time="2999-01-01T00:00:00+00:00", soft_fail=True)
    outcome = run(dag, "task")
    assert outcome["state"] == "deferred"
    trigger = outcome["trigger"]
    assert (
        trigger["classpath"] == "tradewind.sdk.triggers.DateTimeTrigger"
        and trigger["method_name"] == "execute_complete"
    )
    assert decode_value(trigger["kwargs"]["moment"]) == soon
    fired = run_trigger(trigger["classpath"], trigger["kwargs"], timeout_s=5)
    assert "event" in fired
    resumed = run(
        dag,
        "task",
        next_method=trigger["method_name"],
        next_kwargs={**trigger["next_kwargs"], "event": fired["event"]},
    )
    assert resumed["state"] == "success", resumed["traceback"]
    assert run(dag, "deferrable")["rendered_fields"]["target_time"].startswith("2074-01-03")
    timed_out = {"next_method": "__fail__", "next_kwargs": {"error": "Trigger/execution timeout"}}
    outcome = run(dag, "task", **timed_out)
    assert (outcome["state"], outcome["fail_fast"]) == ("failed", True) and "AirflowSensorTimeout" in outcome[
        "error"
    ]
    assert run(dag, "soft", **timed_out)["state"] == "skipped"


def test_time_delta_and_time_sensors(client, run):
    with make_dag() as dag:
        TimeDeltaSensor(task_id="past", delta=datetime.timedelta(hours=1), poke_interval=0.01)
        TimeDeltaSensorAsync(task_id="async_past", delta=datetime.timedelta(hours=1))
        TimeDeltaSensorAsync(task_id="async_future", delta=datetime.timedelta(days=365 * 100))
        TimeSensor(task_id="midnight", target_time=datetime.time(0, 0), poke_interval=0.01, deferrable=True)
    assert run(dag, "past")["state"] == "success"
    assert run(dag, "async_past")["state"] == "success"
    outcome = run(dag, "async_future")
    assert outcome["state"] == "deferred" and outcome["trigger"]["timeout_s"] is None
    assert run(dag, "midnight")["state"] in ("success", "deferred")


def test_file_sensor_with_glob_recursion_and_deferral(client, run, tmp_path):
    client.connections["fs_data"] = {"conn_type": "fs", "extra": {"path": str(tmp_path)}}
    (tmp_path / "deep" / "er").mkdir(parents=True)
    with make_dag() as dag:
        FileSensor(
            task_id="later", filepath=str(tmp_path / "out_{{ ds_nodash }}.csv"), poke_interval=0.02, timeout=5
        )
        FileSensor(
            task_id="recursive",
            fs_conn_id="fs_data",
            filepath="**/*.txt",
            recursive=True,
            poke_interval=0.01,
            timeout=0.1,
        )
        FileSensor(
            task_id="deferred", filepath=str(tmp_path / "nothing_*"), deferrable=True, poke_interval=0.05
        )
        FileSensor(task_id="missing_conn", fs_conn_id="nope", filepath="x")
    timer = threading.Timer(0.1, (tmp_path / "out_20240102.csv").write_text, args=("x",))
    timer.start()
    try:
        assert run(dag, "later")["state"] == "success"
    finally:
        timer.cancel()
    assert run(dag, "recursive")["state"] == "failed"
    (tmp_path / "deep" / "er" / "f.txt").write_text("x")
    assert run(dag, "recursive")["state"] == "success"
    outcome = run(dag, "deferred")
    assert (
        outcome["state"] == "deferred"
        and outcome["trigger"]["classpath"] == "tradewind.sdk.triggers.FileTrigger"
    )
    assert "AirflowNotFoundException" in run(dag, "missing_conn")["error"]


def test_bash_sensor(client, run, tmp_path):
    flag = tmp_path / "flag"
    with make_dag() as dag:
        BashSensor(task_id="task", bash_command=f"test -e {flag}", poke_interval=0.02, timeout=5)
        BashSensor(task_id="strict", bash_command="exit 3", retry_exit_code=1, poke_interval=0.01)
    timer = threading.Timer(0.1, flag.write_text, args=("x",))
    timer.start()
    try:
        assert run(dag, "task")["state"] == "success"
    finally:
        timer.cancel()
    outcome = run(dag, "strict")
    assert (outcome["state"], outcome["fail_fast"]) == ("failed", True)


def test_external_task_sensor(client, run):
    day = "2024-01-02T00:00:00+00:00"
    earlier = "2024-01-01T23:00:00+00:00"
    client.task_states += [
        {"dag_id": "up", "task_id": "a", "logical_date": day, "state": "success"},
        {"dag_id": "up", "task_id": "b", "logical_date": day, "state": "running"},
        {"dag_id": "up", "task_id": "grp.x", "logical_date": day, "state": "success"},
        {"dag_id": "up", "task_id": "grp.y", "logical_date": day, "state": "success"},
        {"dag_id": "up", "task_id": "c", "logical_date": earlier, "state": "failed"},
    ]
    client.dag_runs += [{"dag_id": "up", "logical_date": day, "state": "success"}]
    kwargs = {"external_dag_id": "up", "poke_interval": 0.01, "timeout": 0.05}
    with make_dag() as dag:
        ExternalTaskSensor(task_id="one", external_task_id="a", **kwargs)
        ExternalTaskSensor(task_id="both", external_task_ids=["a", "b"], **kwargs)
        ExternalTaskSensor(task_id="group", external_task_group_id="grp", **kwargs)
        ExternalTaskSensor(task_id="whole", **kwargs)
        ExternalTaskSensor(
            task_id="failed",
            external_task_id="c",
            execution_delta=datetime.timedelta(hours=1),
            failed_states=["failed"],
            **kwargs,
        )
        ExternalTaskSensor(
            task_id="by_fn",
            external_task_id="c",
            failed_states=["failed"],
            soft_fail=True,
            execution_date_fn=lambda dt, **ctx: [dt - datetime.timedelta(hours=1)],
            **kwargs,
        )
        ExternalTaskMarker(task_id="marker", external_dag_id="down", external_task_id="t")
    assert run(dag, "one")["state"] == "success"
    assert run(dag, "both")["state"] == "failed"
    assert run(dag, "group")["state"] == "success"
    assert run(dag, "whole")["state"] == "success"
    outcome = run(dag, "failed")
    assert outcome["state"] == "failed" and "failed" in outcome["error"] and not outcome["fail_fast"]
    assert run(dag, "by_fn")["state"] == "skipped"
    marker = run(dag, "marker")
    assert (
        marker["state"] == "success"
        and marker["rendered_fields"]["logical_date"] == "2024-01-02T00:00:00+00:00"
    )
    with pytest.raises(ValueError):
        ExternalTaskSensor(task_id="x", external_dag_id="d", external_task_id="a", external_task_ids=["b"])


def test_custom_sensor_subclass(client, run):
    class Countdown(BaseSensorOperator):
        def __init__(self, *, start: int, **kwargs):
            super().__init__(**kwargs)
            self.remaining = start

        def poke(self, context):
            self.remaining -= 1
            return self.remaining <= 0

    with make_dag() as dag:
        Countdown(task_id="task", start=3, poke_interval=0.01, default_args={})
    assert run(dag, "task")["state"] == "success"
