"""The fan-out off the engine's hot path: what it sends, and that a slow or broken channel layer never
slows or breaks the engine (events coalesce, then drop, and submit returns at once)."""

from __future__ import annotations

import asyncio
import threading
import time

from channels.layers import get_channel_layer

from scheduler import events
from tradewind.live.fanout import Fanout, clean_event
from tradewind.live.groups import dag_group, tenant_group


def event(task_id: str | None = None, state: str = "queued", tenant: int = 7) -> dict:
    return {
        "tenant": tenant,
        "dag_id": "etl",
        "run_id": "manual__1",
        "task_id": task_id,
        "map_index": None if task_id is None else -1,
        "state": state,
        "try_number": None if task_id is None else 1,
    }


def test_what_is_sent_holds_exactly_the_event_fields_as_plain_values():
    published = event("load", "running") | {"secret": "s3cr3t", "try_number": "2", "state": object}
    sent = clean_event(published)
    assert set(sent) == {
        "tenant",
        "dag_id",
        "run_id",
        "task_id",
        "map_index",
        "state",
        "try_number",
    }
    assert sent["try_number"] == 2
    assert isinstance(sent["state"], str)
    assert clean_event({"dag_id": "etl"}) is None
    assert clean_event({"tenant": "seven", "dag_id": "etl"}) is None


def test_submit_never_raises_into_the_engine():
    fan = Fanout()
    for garbage in (None, {}, {"tenant": 1}, {"tenant": object(), "dag_id": 1}, ["not", "a", "dict"]):
        fan.submit(garbage)
    assert fan.backlog == 0


class BlockedLoop:
    """An event loop in its own thread, listening to one group, that can be held still."""

    def __init__(self, group: str) -> None:
        self.layer = get_channel_layer()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.channel = self.run(self.layer.new_channel())
        self.run(self.layer.group_add(group, self.channel))
        self.gate = threading.Event()

    def run(self, coroutine, timeout: float = 5):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def hold(self) -> None:
        self.loop.call_soon_threadsafe(self.gate.wait)

    def release(self) -> None:
        self.gate.set()

    def received(self) -> list[dict]:
        messages = []
        while True:
            try:
                messages.append(self.run(asyncio.wait_for(self.layer.receive(self.channel), 0.3)))
            except TimeoutError:
                return messages

    def stop(self) -> None:
        self.gate.set()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def test_a_stuck_layer_never_slows_the_engine_and_events_coalesce_then_drop():
    consumers = BlockedLoop(tenant_group(7))
    try:
        fan = Fanout(max_pending=4, send_timeout=10)
        fan.attach_consumer_loop(consumers.loop)
        consumers.hold()
        fan.submit(event(state="queued"))
        deadline = time.monotonic() + 5
        while fan.backlog and time.monotonic() < deadline:  # the sender took it and waits on the held loop
            time.sleep(0.01)
        started = time.monotonic()
        for state in ("queued", "running", "success"):
            fan.submit(event("a", state))
        for number in range(10):
            fan.submit(event(f"t{number}"))
        assert time.monotonic() - started < 0.1
        assert (fan.backlog, fan.dropped) == (4, 7)
        consumers.release()
        assert fan.wait_idle(5)
        messages = consumers.received()
        assert {m["type"] for m in messages} == {"live.events"}
        received = [(e["task_id"], e["state"]) for m in messages for e in m["events"]]
        assert received == [
            (None, "queued"),
            ("a", "success"),
            ("t0", "queued"),
            ("t1", "queued"),
            ("t2", "queued"),
        ]
    finally:
        consumers.stop()


def test_a_stream_of_events_goes_out_in_few_batches():
    consumers = BlockedLoop(tenant_group(7))
    try:
        fan = Fanout(send_interval=0.3)
        fan.attach_consumer_loop(consumers.loop)
        started = time.monotonic()
        for number in range(30):  # one event every 20 ms, for 0.6 s
            fan.submit(event(f"t{number}"))
            time.sleep(0.02)
        assert time.monotonic() - started < 1.5
        assert fan.wait_idle(5)
        messages = consumers.received()
        assert [e["task_id"] for m in messages for e in m["events"]] == [f"t{n}" for n in range(30)]
        assert 2 <= len(messages) <= 4  # the first event at once, then one batch per interval
    finally:
        consumers.stop()


def test_without_a_consumer_loop_the_in_memory_layer_gets_nothing_and_nothing_waits():
    fan = Fanout()
    fan.submit(event())
    assert fan.wait_idle(5)
    assert fan.backlog == 0


def test_an_unreachable_redis_costs_the_engine_nothing(settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens on port 1
        }
    }
    fan = Fanout(max_pending=100, send_timeout=0.5)
    started = time.monotonic()
    for number in range(5000):
        fan.submit(event(f"t{number}"))
    assert time.monotonic() - started < 1.0
    assert fan.wait_idle(10)  # the sender gave up on the batch and is ready for more
    assert fan.dropped > 0


def test_the_engine_subscriber_is_installed_once_per_process():
    from tradewind.live import fanout

    fanout.install()  # LiveConfig.ready already did
    assert events._subscribers.count(fanout.submit) == 1


def test_groups_of_an_event_are_its_tenant_and_its_dag():
    consumers = BlockedLoop(dag_group(9, "etl"))
    try:
        fan = Fanout()
        fan.attach_consumer_loop(consumers.loop)
        fan.submit(event(tenant=8))
        fan.submit(event("load", "success", tenant=9))
        assert fan.wait_idle(5)
        assert [e["tenant"] for m in consumers.received() for e in m["events"]] == [9]
    finally:
        consumers.stop()
