"""Fault injection on the real processes: a worker killed mid-task, a broker that restarts and loses its
queues, a scheduler supervisor killed while another runs, a crashed tenant process, a scheduler restart."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.utils import timezone

from scheduler import leases
from scheduler.models import SchedulerLease, TaskInstance, TaskInstanceHistory
from scheduler.states import DagRunState, TIState
from tradewind.celery import queue_name

from .conftest import dag_file, free_port, tis_of, trigger, wait_for_run, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
]

KILLABLE = dag_file(
    """
    from datetime import timedelta

    def slow_first_try(ti):
        if ti.try_number == 1:
            time.sleep(120)

    with DAG("killable", schedule=None, start_date=START):
        PythonOperator(
            task_id="slow", python_callable=slow_first_try, retries=1, retry_delay=timedelta(seconds=0.5)
        )
    """
)


def test_a_worker_killed_mid_task_is_detected_by_its_missing_heartbeat_and_the_task_retried(
    tenant, upload, processes
):
    upload(tenant, {"killable.py": KILLABLE})
    fast_zombies = {"TRADEWIND_ZOMBIE_TIMEOUT": "2"}
    doomed = processes.worker("--tenants", tenant.slug, env=fast_zombies)
    processes.scheduler(env=fast_zombies)
    run = trigger(tenant, "killable")
    wait_until(lambda: tis_of(run)["slow"].state == TIState.RUNNING, 60, "the first try to run")
    processes.kill(doomed, signal.SIGKILL)  # the worker and everything in its process group
    killed_at = time.monotonic()
    processes.worker("--tenants", tenant.slug, env=fast_zombies)
    assert wait_for_run(run, 60).state == DagRunState.SUCCESS
    assert time.monotonic() - killed_at >= 2  # not before the heartbeat was overdue
    ti = tis_of(run)["slow"]
    assert (ti.state, ti.try_number) == (TIState.SUCCESS, 2)
    [first] = TaskInstanceHistory.objects.filter(task_instance=ti)
    assert (first.try_number, first.state) == (1, TIState.FAILED)
    assert "stopped heartbeating" in first.error


@pytest.fixture
def broker() -> Iterator[object]:
    """A Redis server of our own on a free port, without persistence: restart() loses every queue."""

    class Broker:
        def __init__(self) -> None:
            self.port = free_port()
            self.url = f"redis://127.0.0.1:{self.port}/0"
            self.process: subprocess.Popen | None = None

        def start(self) -> None:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=subprocess.DEVNULL,
            )
            client = redis.Redis.from_url(self.url)
            wait_until(lambda: _pings(client), 10, "redis-server")

        def restart(self) -> None:
            self.process.terminate()
            self.process.wait(10)
            self.start()

    server = Broker()
    server.start()
    yield server
    server.process.terminate()
    server.process.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


ONE_TASK = dag_file(
    """
    with DAG("one", schedule=None, start_date=START):
        PythonOperator(task_id="only", python_callable=lambda: None)
    """
)


def test_a_queued_task_instance_lost_in_a_broker_restart_is_sent_again_and_completes(
    tenant, upload, processes, broker
):
    upload(tenant, {"one.py": ONE_TASK})
    env = {"CELERY_BROKER_URL": broker.url, "TRADEWIND_QUEUED_TIMEOUT": "2"}
    processes.scheduler(env=env)  # no worker yet: the message waits in the broker
    run = trigger(tenant, "one")
    client = redis.Redis.from_url(broker.url)
    wait_until(lambda: client.llen(queue_name(tenant.slug)) == 1, 30, "the message in the broker")
    broker.restart()
    assert client.llen(queue_name(tenant.slug)) == 0  # lost
    assert tis_of(run)["only"].state == TIState.QUEUED
    processes.worker("--tenants", tenant.slug, env=env)
    assert wait_for_run(run, 30).state == DagRunState.SUCCESS
    assert tis_of(run)["only"].try_number == 1  # the same try, sent again


STEPS = dag_file(
    """
    def step(ti):
        with open("{out}/" + ti.task_id, "a") as handle:
            handle.write(f"{ti.try_number}\\n")
        time.sleep(0.4)

    with DAG("steps", schedule=None, start_date=START):
        steps = [PythonOperator(task_id=f"s{i}", python_callable=step) for i in range(8)]
        for upstream, downstream in zip(steps, steps[1:]):
            upstream >> downstream
    """
)


def tenant_processes(tenant_id: int) -> dict[int, str]:
    """pid -> command line of the live tenant scheduler processes serving `tenant_id`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"--run-tenants" in args and state != "Z":
            tenants = args[args.index(b"--run-tenants") + 1].decode().split(",")
            if str(tenant_id) in tenants:
                found[int(entry.name)] = b" ".join(args).decode()
    return found


def lease_owner(tenant) -> str | None:
    lease = SchedulerLease.objects.filter(tenant=tenant).first()
    return lease.owner if lease else None


def owned_by(process: subprocess.Popen):
    return lambda tenant: (lease_owner(tenant) or "").split(":")[1:2] == [str(process.pid)]


def test_killing_the_active_scheduler_hands_its_tenants_to_the_other_without_double_scheduling(
    tenant, upload, processes, data_dir
):
    out = data_dir / "out"
    out.mkdir()
    out.chmod(0o777)
    upload(tenant, {"steps.py": STEPS.replace("{out}", str(out))})
    processes.worker("--tenants", tenant.slug, "--concurrency", "2")
    first = processes.scheduler()
    wait_until(lambda: owned_by(first)(tenant) and tenant_processes(tenant.pk), 30, "the first scheduler")
    second = processes.scheduler()  # standby: the lease is taken
    run = trigger(tenant, "steps")
    wait_until(lambda: (out / "s2").exists(), 60, "a few steps")
    processes.kill(first, signal.SIGKILL, group=False)  # the supervisor alone; its child dies with it
    killed_at = time.monotonic()
    wait_until(lambda: owned_by(second)(tenant), 15, "the takeover")
    assert time.monotonic() - killed_at < 3 + 3  # within the lease (3 s) and one renewal
    wait_until(  # the killed supervisor's tenant process died with it
        lambda: all(f"--owner {lease_owner(tenant)}" in cmd for cmd in tenant_processes(tenant.pk).values()),
        10,
        "the orphan to exit",
    )
    # Then a clean restart: the second stops (giving the lease up) and a third resumes at once.
    wait_until(lambda: (out / "s4").exists(), 60, "more steps")
    processes.kill(second, signal.SIGTERM)
    assert lease_owner(tenant) is None
    third = processes.scheduler()
    assert wait_for_run(run, 60).state == DagRunState.SUCCESS
    assert owned_by(third)(tenant)
    tis = tis_of(run)
    assert {(ti.state, ti.try_number) for ti in tis.values()} == {(TIState.SUCCESS, 1)}
    assert not TaskInstanceHistory.objects.filter(task_instance__dag_run=run).exists()
    assert {path.name: path.read_text() for path in out.iterdir()} == {f"s{i}": "1\n" for i in range(8)}


def test_a_crashed_tenant_process_is_restarted_with_backoff_without_affecting_other_tenants(
    tenant, other_tenant, upload, processes
):
    upload(tenant, {"one.py": ONE_TASK})
    upload(other_tenant, {"one.py": ONE_TASK})
    processes.worker()  # shared
    processes.scheduler()
    wait_until(
        lambda: tenant_processes(tenant.pk) and tenant_processes(other_tenant.pk), 30, "tenant processes"
    )
    [crashed] = tenant_processes(tenant.pk)
    [other] = tenant_processes(other_tenant.pk)
    wait_until(lambda: leases.serving(tenant.pk) and leases.serving(other_tenant.pk), 30, "both served")
    theirs = trigger(other_tenant, "one")
    os.kill(crashed, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_until(lambda: not leases.serving(tenant.pk), 5, "the lease to show nobody serves the tenant")
    assert leases.serving(other_tenant.pk)
    wait_until(lambda: set(tenant_processes(tenant.pk)) - {crashed}, 30, "the restart")
    restarted_after, restarted_at = time.monotonic() - killed_at, timezone.now()
    assert restarted_after >= 1.5, restarted_after  # backed off (2 s after a crash soon after its start)
    wait_until(lambda: leases.serving(tenant.pk), 30, "the restarted process to serve the tenant")
    theirs = wait_for_run(theirs, 30)
    assert theirs.state == DagRunState.SUCCESS
    assert theirs.end_date < restarted_at  # the other tenant was served while this one was down
    assert list(tenant_processes(other_tenant.pk)) == [other]  # never touched
    assert wait_for_run(trigger(tenant, "one"), 30).state == DagRunState.SUCCESS
    assert TaskInstance.objects.filter(state=TIState.RUNNING).count() == 0
