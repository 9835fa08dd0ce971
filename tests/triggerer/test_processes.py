"""The triggerer as a process: HA takeover after SIGKILL, the Redis wake-up, and a DAG run end to end with the
scheduler loop and the local executor (no `dags test`)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from scheduler import services, wakeup
from scheduler.models import Dag, DagRun, TaskInstance
from scheduler.states import RUN_FINISHED, DagRunState, RunType, TIState
from scheduler.supervisor import schedule_tenants
from workers.executors import LocalExecutor
from workers.sandbox.limits import tenant_ids
from workers.triggerer import EmbeddedTriggerer, Triggerer

from .conftest import ACTOR, dag_file, deferred, drive, log_of, start_run, state_of

pytestmark = pytest.mark.django_db(transaction=True)

PLATFORM_ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def database_url() -> str:
    """The test database, for a `manage.py` child process."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def live_pids_of_uid(uid: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                status = Path(f"/proc/{entry.name}/status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
                pids.append(int(entry.name))
    return pids


@pytest.mark.postgres
def test_a_killed_triggerer_s_triggers_are_claimed_by_another(
    tenant, upload, out_dir, storage, settings, make_triggerer
):
    if connection.vendor != "postgresql":
        pytest.skip("a second process needs the PostgreSQL test database")
    settings.TRADEWIND_LEASE_SECONDS = 2
    upload(
        tenant,
        {
            "job.py": dag_file("""
from tradewind.sdk.sensors.filesystem import FileSensor

FileSensor(task_id="wait", filepath="{{ dag_run.conf['path'] }}", deferrable=True, poke_interval=0.1)
""")
        },
    )
    path = out_dir / "ready"
    ti = deferred(start_run(tenant, "job", conf={"path": str(path)}), "wait")
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "TRADEWIND_DATA_DIR": str(storage),
        "TRADEWIND_LEASE_SECONDS": "2",
    }
    env.pop("REDIS_URL", None)
    ids = tenant_ids(tenant.pk)
    first = subprocess.Popen(
        [sys.executable, "manage.py", "triggerer", "--tenants", tenant.slug, "--capacity", "10"],
        cwd=PLATFORM_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: "runs in triggerer" in log_of(ti), what="the first triggerer to start the trigger")
        first_owner = TaskInstance.objects.get(pk=ti.pk).trigger_claimed_by
        assert f":{first.pid}:" in first_owner
        if ids is not None:
            wait_until(lambda: live_pids_of_uid(ids[0]), what="the first triggerer's host")
        first.kill()
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    if ids is not None:  # its host died with it
        wait_until(lambda: not live_pids_of_uid(ids[0]), what="the dead triggerer's host to go")
    second = make_triggerer(tenant)
    second.run_pass()
    assert TaskInstance.objects.get(pk=ti.pk).trigger_claimed_by == first_owner  # until the claim expires
    drive(second, until=lambda: TaskInstance.objects.get(pk=ti.pk).trigger_claimed_by == second.owner)
    drive(second, until=lambda: f"runs in triggerer {second.owner}" in log_of(ti))
    path.write_text("here")
    drive(second, until=lambda: state_of(ti) == TIState.SCHEDULED)
    assert log_of(ti).count("trigger fired") == 1


@pytest.mark.redis
def test_a_wake_up_published_by_another_process_reaches_the_triggerer(tenant):
    if not settings.REDIS_URL:
        pytest.skip("Redis is not reachable (CI sets REQUIRE_SERVICES=1, which makes this a failure)")
    import redis

    triggerer = Triggerer(tenant_ids=[tenant.pk])
    stop = threading.Event()
    triggerer._start_listener(stop)
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        deadline = time.monotonic() + 10
        while not triggerer._wake.wait(0.2):
            assert time.monotonic() < deadline, "the wake-up never arrived"
            client.publish(f"{wakeup.CHANNEL_PREFIX}{tenant.pk}", b"1")
    finally:
        stop.set()


@pytest.mark.postgres
def test_a_dag_with_a_deferrable_sensor_runs_to_success_with_the_scheduler_and_the_triggerer(
    tenant, upload, settings
):
    if connection.vendor != "postgresql":
        pytest.skip(
            "the in-memory SQLite test database fails concurrent writers ('database table is locked')"
        )
    # Timed passes 15 s apart at the soonest: finishing well before proves the deferral woke the triggerer.
    settings.TRADEWIND_TRIGGERER_POLL_SECONDS = 30
    settings.TRADEWIND_LEASE_SECONDS = 90
    upload(
        tenant,
        {
            "job.py": dag_file("""
from tradewind.sdk.sensors.time_delta import TimeDeltaSensorAsync

start = EmptyOperator(task_id="start")
wait = TimeDeltaSensorAsync(task_id="wait", delta=timedelta(seconds=3))
end = PythonOperator(task_id="end", python_callable=lambda: "done")
start >> wait >> end
""")
        },
    )
    dag = Dag.objects.for_tenant(tenant).get(dag_id="job")
    Dag.objects.filter(pk=dag.pk).update(is_paused=False)
    run = services.create_dag_run(
        tenant=tenant,
        dag=dag,
        actor=ACTOR,
        run_type=RunType.MANUAL,
        logical_date=timezone.now(),
        data_interval=None,
    )
    stop = threading.Event()
    scheduler = threading.Thread(
        target=schedule_tenants, args=([tenant.pk], None, stop, LocalExecutor(parallelism=4)), daemon=True
    )
    triggerer = EmbeddedTriggerer()
    triggerer.start()
    time.sleep(0.5)  # its first pass is done: it sleeps until woken
    scheduler.start()
    try:
        wait_until(
            lambda: DagRun.objects.get(pk=run.pk).state in RUN_FINISHED, timeout=10, what="the run to finish"
        )
    finally:
        stop.set()
        wakeup.notify(tenant.pk)
        scheduler.join(20)
        triggerer.shutdown()
    assert DagRun.objects.get(pk=run.pk).state == DagRunState.SUCCESS
    states = dict(TaskInstance.objects.filter(dag_run=run).values_list("task_id", "state"))
    assert states == {"start": TIState.SUCCESS, "wait": TIState.SUCCESS, "end": TIState.SUCCESS}
    wait = TaskInstance.objects.get(dag_run=run, task_id="wait")
    assert wait.try_number == 1
    text = log_of(wait)
    assert "runs in triggerer" in text and "trigger fired; the task resumes" in text
    assert not triggerer.thread.is_alive()


def test_the_command_refuses_unknown_tenants(tenant):
    with pytest.raises(CommandError, match="unknown tenant.*nope"):
        call_command("triggerer", "--tenants", f"{tenant.slug},nope")
    with pytest.raises(CommandError, match="capacity"):
        call_command("triggerer", "--capacity", "0")
