"""The production engine path with real processes: `manage.py scheduler` and `manage.py worker` (Celery on
per-tenant queues of a Redis broker), on the PostgreSQL test database."""

from __future__ import annotations

import base64
import json
import os
import statistics
import subprocess
import sys
import time
import uuid

import pytest
import redis

from scheduler.loop import TenantScheduler
from scheduler.models import TaskInstance, TaskInstanceHistory
from scheduler.states import DagRunState, TIState
from tenants import services as tenant_services
from tenants.models import Tenant
from tradewind.celery import RUN_TASK_INSTANCE, queue_name
from workers.executors import CeleryExecutor

from .conftest import dag_file, max_overlap, scheduling, tis_of, trigger, wait_for_run, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
]

PIPELINE = dag_file(
    """
    with DAG("pipeline", schedule=None, start_date=START):
        first = PythonOperator(task_id="first", python_callable=lambda: None)
        middle = [PythonOperator(task_id=f"m{i}", python_callable=lambda: time.sleep(0.5)) for i in range(3)]
        special = PythonOperator(task_id="special", python_callable=lambda: None, queue="special")
        chain = [PythonOperator(task_id=f"c{i}", python_callable=lambda: None) for i in range(6)]
        first >> middle >> special >> chain[0]
        for upstream, downstream in zip(chain, chain[1:]):
            upstream >> downstream
    """
)
ONE_TASK = dag_file(
    """
    with DAG("one", schedule=None, start_date=START):
        PythonOperator(task_id="only", python_callable=lambda: None)
    """
)


def queued_messages(url: str, queue: str) -> list[dict]:
    """The Celery messages waiting in a Redis queue, decoded: {"headers", "args", "kwargs", "embed"}."""
    found = []
    for raw in redis.Redis.from_url(url).lrange(queue, 0, -1):
        envelope = json.loads(raw)
        args, kwargs, embed = json.loads(base64.b64decode(envelope["body"]))
        found.append({"headers": envelope["headers"], "args": args, "kwargs": kwargs, "embed": embed})
    return found


def test_a_dag_runs_to_success_through_the_scheduler_and_worker_processes(tenant, upload, processes):
    upload(tenant, {"pipeline.py": PIPELINE})
    # A long timed sleep: the hops below are only fast if finishing tasks wake the scheduler.
    slow_timer = {"TRADEWIND_SCHEDULER_MAX_SLEEP": "10"}
    processes.worker("--tenants", tenant.slug, "--queues", "default,special", "--concurrency", "3")
    processes.scheduler(env=slow_timer)
    run = wait_for_run(trigger(tenant, "pipeline"), 90)
    assert run.state == DagRunState.SUCCESS
    tis = tis_of(run)
    assert {(ti.state, ti.try_number) for ti in tis.values()} == {(TIState.SUCCESS, 1)}
    assert max_overlap([tis[f"m{i}"] for i in range(3)]) >= 2  # the worker ran them side by side
    hops = [(tis[f"c{i + 1}"].start_date - tis[f"c{i}"].end_date).total_seconds() for i in range(5)]
    assert statistics.median(hops) < 1.0, hops


def test_a_dedicated_worker_does_not_consume_another_tenants_queue(
    tenant, other_tenant, upload, processes, redis_url, celery_app
):
    upload(tenant, {"one.py": ONE_TASK})
    upload(other_tenant, {"one.py": ONE_TASK})
    processes.worker("--tenants", tenant.slug)
    with scheduling([tenant.pk, other_tenant.pk], CeleryExecutor()):
        ours, theirs = trigger(tenant, "one"), trigger(other_tenant, "one")
        assert wait_for_run(ours).state == DagRunState.SUCCESS
        wait_until(lambda: queued_messages(redis_url, queue_name(other_tenant.slug)), 10, "the other message")
        [message] = queued_messages(redis_url, queue_name(other_tenant.slug))
        assert tis_of(theirs)["only"].state == TIState.QUEUED
        assert message["args"] == [other_tenant.pk, tis_of(theirs)["only"].pk, 1]
        processes.worker("--tenants", other_tenant.slug)  # now someone serves it
        assert wait_for_run(theirs).state == DagRunState.SUCCESS


def test_the_message_carries_ids_and_the_try_number_only(tenant, upload, redis_url, celery_app):
    upload(tenant, {"one.py": ONE_TASK})
    run = trigger(tenant, "one")
    result = TenantScheduler(tenant.pk, CeleryExecutor()).run_pass()
    assert result.tasks_queued == 1
    ti = tis_of(run)["only"]
    [message] = queued_messages(redis_url, queue_name(tenant.slug))
    assert message["headers"]["task"] == RUN_TASK_INSTANCE
    assert message["args"] == [tenant.pk, ti.pk, 1]
    assert message["kwargs"] == {}
    # What monitoring shows of them: the same as Celery's own repr, which the executor spares it.
    assert (message["headers"]["argsrepr"], message["headers"]["kwargsrepr"]) == (
        f"[{tenant.pk}, {ti.pk}, 1]",
        "{}",
    )
    assert not any(message["embed"].values())  # no callbacks, errbacks, chains or chords


def test_a_batch_of_messages_goes_to_redis_in_few_round_trips_the_first_ones_at_once(
    tenant, other_tenant, redis_url, celery_app, monkeypatch
):
    from workers.executors import QueuedTask

    pushes = []  # per pipeline sent, its LPUSHes (a message each); kombu's own set-up sends others
    execute = redis.client.Pipeline.execute
    monkeypatch.setattr(
        redis.client.Pipeline,
        "execute",
        lambda self, *a, **k: (
            pushes.append(sum(c[0][0] == "LPUSH" for c in self.command_stack)) or execute(self, *a, **k)
        ),
    )
    batch = [QueuedTask(t.pk, t.slug, ti_id, 1) for ti_id in range(1, 21) for t in (tenant, other_tenant)]
    CeleryExecutor().submit(batch)
    # The first eight as soon as they are built, then batches as large as everything sent before them.
    assert [n for n in pushes if n] == [8, 8, 16, 8]
    for owner in (tenant, other_tenant):
        messages = queued_messages(redis_url, queue_name(owner.slug))
        assert sorted(m["args"][1] for m in messages) == list(range(1, 21))
        assert {tuple(m["args"][::2]) for m in messages} == {(owner.pk, 1)}
    CeleryExecutor().submit(batch[:1])  # the producer's channel writes on its own again afterwards
    assert len(queued_messages(redis_url, queue_name(tenant.slug))) == 21


@pytest.mark.parametrize(
    ("url", "transport"),
    [("redis://127.0.0.1:6379/0", "workers.broker:Transport"), ("amqp://guest@127.0.0.1//", "None")],
)
def test_a_redis_broker_url_selects_our_transport(url, transport):
    shown = subprocess.run(
        [sys.executable, "-c", "from tradewind import settings; print(settings.CELERY_BROKER_TRANSPORT)"],
        env={**os.environ, "CELERY_BROKER_URL": url},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == transport


def test_the_redis_channel_keeps_one_client_for_its_acks(redis_url):
    from kombu import Connection

    with Connection(redis_url, transport="workers.broker:Transport") as conn:
        queue = conn.SimpleQueue(f"test-acks-{uuid.uuid4().hex[:8]}")
        channel = queue.channel
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        unacked = redis.Redis.from_url(redis_url)
        assert unacked.hlen(channel.unacked_key) == 1  # late acks: recorded while the message is handled
        client = channel._create_client()
        message.ack()
        assert unacked.hlen(channel.unacked_key) == 0
        assert channel._create_client() is client  # recording and acking built no client of their own
        assert channel._create_client(asynchronous=True) is not client  # BRPOP keeps its connection
        channel._disconnect_pools()  # what kombu does after a fork or a lost connection
        fresh = channel._create_client()
        assert fresh is not client and fresh.connection_pool is channel.pool
        queue.put({"n": 2})
        assert queue.get(timeout=5).payload == {"n": 2}
        queue.close()


def test_a_fresh_workers_threads_are_connected_before_its_first_task(tenant, processes):
    from django.db import connection

    def backends() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            return cursor.fetchone()[0]

    before = backends()
    processes.worker("--tenants", tenant.slug, "--concurrency", "3")  # returns once it is ready
    assert backends() >= before + 3  # each pool thread opened its connection (and prepared its read) already


DUPLICATE = dag_file(
    """
    def record():
        with open("{out}/ran", "a") as handle:
            handle.write("ran\\n")
        time.sleep(0.5)

    with DAG("duplicate", schedule=None, start_date=START):
        PythonOperator(task_id="record", python_callable=record)
    """
)


def test_a_message_delivered_twice_runs_the_task_once(
    tenant, upload, processes, redis_url, celery_app, data_dir
):
    out = data_dir / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    upload(tenant, {"duplicate.py": DUPLICATE.replace("{out}", str(out))})
    run = trigger(tenant, "duplicate")
    TenantScheduler(tenant.pk, CeleryExecutor()).run_pass()
    ti = tis_of(run)["record"]
    [message] = queued_messages(redis_url, queue_name(tenant.slug))
    # The very same message again: same task id, same arguments.
    celery_app.send_task(
        RUN_TASK_INSTANCE,
        args=message["args"],
        queue=queue_name(tenant.slug),
        task_id=message["headers"]["id"],
    )
    assert len(queued_messages(redis_url, queue_name(tenant.slug))) == 2
    worker = processes.worker("--tenants", tenant.slug, "--concurrency", "2")
    wait_until(lambda: tis_of(run)["record"].state == TIState.SUCCESS, 30, "the task to succeed")
    wait_until(lambda: not queued_messages(redis_url, queue_name(tenant.slug)), 10, "both deliveries")
    wait_until(
        lambda: "already started or moved on" in processes.output(worker), 10, "the duplicate's refusal"
    )
    ti = TaskInstance.objects.get(pk=ti.pk)
    assert ti.try_number == 1
    assert not TaskInstanceHistory.objects.filter(task_instance=ti).exists()
    assert (out / "ran").read_text() == "ran\n"


def test_a_shared_worker_picks_up_tenants_created_after_it_started(tenant, upload, processes, celery_app):
    worker = processes.worker("--queue-refresh", "0.3")  # shared: no --tenants
    assert f"Worker consuming {queue_name(tenant.slug)}" in processes.output(worker)
    latecomer = tenant_services.create_tenant(slug=f"late{uuid.uuid4().hex[:6]}", name="Latecomer")
    upload(latecomer, {"one.py": ONE_TASK})
    with scheduling([latecomer.pk], CeleryExecutor()):
        assert wait_for_run(trigger(latecomer, "one")).state == DagRunState.SUCCESS
    assert f"Started consuming from {queue_name(latecomer.slug)}" in processes.output(worker)
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
    wait_until(
        lambda: f"Canceling queue {queue_name(tenant.slug)}" in processes.output(worker),
        10,
        "the suspended queue",
    )


def test_without_redis_the_scheduler_process_is_woken_through_its_socket(tenant, upload, processes, settings):
    upload(tenant, {"one.py": ONE_TASK})
    # The local executor (no broker) and no Redis: the wake-up goes through DATA_DIR/wakeup/*.sock.
    no_redis = {"CELERY_BROKER_URL": "", "REDIS_URL": "", "TRADEWIND_SCHEDULER_MAX_SLEEP": "60"}
    processes.scheduler(env=no_redis)
    wait_until(lambda: any((settings.DATA_DIR / "wakeup").glob("*.sock")), 30, "the scheduler's socket")
    time.sleep(1)  # its first pass is over: from now on only a wake-up (or 60 s) brings another
    settings.REDIS_URL = ""
    run = trigger(tenant, "one")  # the run's event wakes the tenant's scheduler
    assert wait_for_run(run, 20).state == DagRunState.SUCCESS


FLOOD = dag_file(
    """
    def nap():
        time.sleep(0.3)

    with DAG("flood", schedule=None, start_date=START):
        for i in range(8):
            PythonOperator(task_id=f"f{i}", python_callable=nap)
    """
)


def test_a_shared_worker_takes_turns_between_tenant_queues(
    tenant, other_tenant, upload, processes, redis_url, celery_app
):
    upload(tenant, {"flood.py": FLOOD})
    upload(other_tenant, {"one.py": ONE_TASK})
    processes.worker("--concurrency", "1")  # shared, one task at a time
    with scheduling([tenant.pk, other_tenant.pk], CeleryExecutor()):
        flood = trigger(tenant, "flood")
        wait_until(
            lambda: len(queued_messages(redis_url, queue_name(tenant.slug))) >= 5, 30, "the flood's backlog"
        )
        small = trigger(other_tenant, "one")
        assert wait_for_run(small).state == DagRunState.SUCCESS
        assert wait_for_run(flood).state == DagRunState.SUCCESS
    flood_starts = sorted(ti.start_date for ti in tis_of(flood).values())
    assert tis_of(small)["only"].start_date < flood_starts[-3], "the other tenant waited behind the flood"
