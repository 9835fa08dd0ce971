"""Triggers serialize to (classpath, kwargs) and run_trigger runs them with asyncio."""

from __future__ import annotations

import datetime
import threading
import time

import pendulum

from tradewind.sdk.execution import decode_value, encode_value
from tradewind.sdk.triggers import DateTimeTrigger, FileTrigger, TimeDeltaTrigger, run_trigger


def _serialized(trigger):
    classpath, kwargs = trigger.serialize()
    return classpath, encode_value(kwargs)


def test_datetime_trigger_fires_at_its_moment_with_the_moment_as_payload():
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=0.3)
    classpath, kwargs = _serialized(DateTimeTrigger(moment))
    started = time.monotonic()
    result = run_trigger(classpath, kwargs, timeout_s=5)
    assert time.monotonic() - started >= 0.25
    assert decode_value(result["event"]) == moment


def test_time_delta_trigger_serializes_as_a_moment():
    before = pendulum.now("UTC")
    classpath, kwargs = TimeDeltaTrigger(datetime.timedelta(hours=1)).serialize()
    assert classpath == "tradewind.sdk.triggers.DateTimeTrigger"
    assert before.add(hours=1) <= kwargs["moment"] <= pendulum.now("UTC").add(hours=1)


def test_trigger_timeout_is_reported():
    classpath, kwargs = _serialized(TimeDeltaTrigger(datetime.timedelta(hours=1)))
    result = run_trigger(classpath, kwargs, timeout_s=0.2)
    assert result["timeout"] is True and "did not fire within 0.2 seconds" in result["error"]


def test_file_trigger_waits_for_a_matching_file(tmp_path):
    target = tmp_path / "in" / "data_1.csv"
    target.parent.mkdir()
    classpath, kwargs = _serialized(FileTrigger(str(tmp_path / "in" / "*.csv"), poke_interval=0.05))
    timer = threading.Timer(0.2, target.write_text, args=("x",))
    timer.start()
    try:
        assert run_trigger(classpath, kwargs, timeout_s=5) == {"event": True}
    finally:
        timer.cancel()


def test_unknown_trigger_class_is_an_error_not_an_exception():
    result = run_trigger("tradewind.sdk.triggers.Nope", {}, timeout_s=1)
    assert "Could not create trigger" in result["error"]
