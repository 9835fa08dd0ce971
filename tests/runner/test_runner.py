"""One task try end to end: a real bundle, the real sandbox child, the engine's start/finish services."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection

from scheduler import services
from scheduler.models import DagRun, TaskInstance, XCom
from scheduler.states import DagRunState, TIState, transition_run
from tests.factories import make_dag_version, make_run
from tests.runner.conftest import ACTOR, queue, start_run
from tradewind.sdk import DAG
from tradewind.sdk.operators.empty import EmptyOperator
from tradewind.secrets import services as secrets
from workers import runner
from workers.logs import get_log_store

pytestmark = pytest.mark.django_db(transaction=True)

PRELUDE = """
import os, sys, time
from datetime import datetime, timedelta
from tradewind.sdk import DAG
from tradewind.sdk.operators.python import PythonOperator
from tradewind.sdk.operators.bash import BashOperator
"""


def dag_file(body: str, **dag_kwargs: object) -> str:
    kwargs = ", ".join(f"{name}={value}" for name, value in dag_kwargs.items())
    extra = f", {kwargs}" if kwargs else ""
    indented = "\n".join(f"    {line}" for line in body.strip().splitlines())
    header = f'with DAG("job", schedule=None, start_date=datetime(2024, 1, 1){extra}) as dag:'
    return f"{PRELUDE}\n{header}\n{indented}\n"


def run_one(tenant, run, task_id: str) -> TaskInstance:
    ti = queue(run, task_id)
    finished = runner.run_task_instance(tenant_id=tenant.pk, ti_id=ti.pk, try_number=ti.try_number)
    assert finished is not None
    return TaskInstance.objects.get(pk=ti.pk)


def log_of(ti: TaskInstance, try_number: int | None = None) -> str:
    ti = TaskInstance.objects.select_related("dag_run__dag").get(pk=ti.pk)
    return get_log_store().read(ti, try_number or ti.try_number).decode()


def test_a_try_runs_in_a_sandboxed_child_and_its_outcome_is_recorded(tenant, upload):
    upload(
        tenant,
        {
            "job.py": dag_file("""
PythonOperator(task_id="hello", python_callable=lambda: print("hi from", os.getpid()) or {"answer": 42})
""")
        },
    )
    run = start_run(tenant, "job")
    ti = run_one(tenant, run, "hello")
    assert ti.state == TIState.SUCCESS and ti.try_number == 1
    assert XCom.objects.get(dag_run=run, task_id="hello", key="return_value").value == {"answer": 42}
    text = log_of(ti)
    assert "[tradewind] starting attempt 1 of 1" in text
    assert "hi from" in text and "[tradewind] attempt 1 ended: success" in text
    child_pid = int(text.split("hi from ")[1].split()[0])
    assert child_pid != os.getpid()
    assert ti.hostname


def test_the_log_can_be_followed_while_the_task_runs(tenant, upload):
    upload(
        tenant,
        {
            "job.py": dag_file("""
def talk():
    print("first line")
    time.sleep(3)
    print("second line")

PythonOperator(task_id="talk", python_callable=talk)
""")
        },
    )
    run = start_run(tenant, "job")
    ti = TaskInstance.objects.select_related("dag_run__dag").get(pk=queue(run, "talk").pk)
    worker = threading.Thread(
        target=lambda: runner.run_task_instance(tenant_id=tenant.pk, ti_id=ti.pk, try_number=ti.try_number)
    )
    worker.start()
    try:
        store, seen, deadline = get_log_store(), b"", time.monotonic() + 30
        while b"first line" not in seen:
            assert time.monotonic() < deadline, seen
            seen += store.read(ti, 1, offset=len(seen))
            time.sleep(0.05)
        assert b"second line" not in seen  # read while the task still sleeps
    finally:
        worker.join(timeout=60)
    assert b"second line" in store.read(ti, 1, offset=len(seen))


def test_a_duplicate_or_late_delivery_does_nothing(tenant, upload):
    upload(tenant, {"job.py": dag_file('PythonOperator(task_id="once", python_callable=lambda: 1)')})
    run = start_run(tenant, "job")
    ti = queue(run, "once")
    assert runner.run_task_instance(tenant_id=tenant.pk, ti_id=ti.pk, try_number=ti.try_number) is not None
    assert runner.run_task_instance(tenant_id=tenant.pk, ti_id=ti.pk, try_number=ti.try_number) is None
    assert runner.run_task_instance(tenant_id=tenant.pk + 1000, ti_id=ti.pk, try_number=ti.try_number) is None


def test_a_try_starts_on_a_new_connection_when_the_database_dropped_the_threads_one(tenant, upload):
    if connection.vendor != "postgresql":
        pytest.skip("a server that drops connections is PostgreSQL (CI runs the suite on PostgreSQL)")
    upload(tenant, {"job.py": dag_file('PythonOperator(task_id="once", python_callable=lambda: 1)')})
    run = start_run(tenant, "job")
    ti = queue(run, "once")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    other = connection.get_new_connection(connection.get_connection_params())
    try:  # what a database restart does to the thread's connection, which it used a moment ago
        other.execute("SELECT pg_terminate_backend(%s)", [backend])
    finally:
        other.close()
    finished = runner.run_task_instance(tenant_id=tenant.pk, ti_id=ti.pk, try_number=ti.try_number)
    assert finished is not None and finished.state == TIState.SUCCESS


def test_a_child_that_dies_fails_the_try_with_a_clear_error(tenant, upload):
    upload(
        tenant, {"job.py": dag_file('PythonOperator(task_id="dies", python_callable=lambda: os._exit(9))')}
    )
    run = start_run(tenant, "job")
    ti = run_one(tenant, run, "dies")
    assert ti.state == TIState.FAILED
    assert "exited with status 9" in ti.error
    assert "exited with status 9" in log_of(ti)


def test_execution_timeout_stops_the_task(tenant, upload):
    upload(
        tenant,
        {
            "job.py": dag_file("""
PythonOperator(task_id="slow", python_callable=lambda: time.sleep(60), execution_timeout=timedelta(seconds=1))
""")
        },
    )
    run = start_run(tenant, "job")
    began = time.monotonic()
    ti = run_one(tenant, run, "slow")
    assert time.monotonic() - began < 15
    assert ti.state == TIState.FAILED
    assert "timeout" in ti.error.lower()


def test_secrets_never_reach_the_log_the_error_or_the_rendered_fields(tenant, upload):
    secrets.set_connection(
        tenant=tenant,
        actor=ACTOR,
        fields={
            "conn_id": "warehouse",
            "conn_type": "postgres",
            "login": "etl",
            "password": "Sup3r-Secret-Pw",
        },
    )
    upload(
        tenant,
        {
            "job.py": dag_file("""
from tradewind.sdk.connections import BaseHook

def leak():
    password = BaseHook.get_connection("warehouse").password
    print("the password is", password)
    raise RuntimeError("login failed with " + password)

BashOperator(task_id="templated", bash_command="echo {{ conn.warehouse.password }} | wc -c")
PythonOperator(task_id="leaky", python_callable=leak)
""")
        },
    )
    run = start_run(tenant, "job")
    templated = run_one(tenant, run, "templated")
    assert templated.state == TIState.SUCCESS
    assert "Sup3r-Secret-Pw" not in str(templated.rendered_fields)
    assert "***" in templated.rendered_fields["bash_command"]
    leaky = run_one(tenant, run, "leaky")
    assert leaky.state == TIState.FAILED
    text = log_of(leaky)
    assert "the password is ***" in text and "Sup3r-Secret-Pw" not in text
    assert "login failed with ***" in leaky.error and "Sup3r-Secret-Pw" not in leaky.error


def test_running_tries_heartbeat_from_one_thread_and_show_their_child_pids(tenant, upload, settings):
    settings.TRADEWIND_HEARTBEAT_SECONDS = 0.2
    upload(
        tenant,
        {
            "job.py": dag_file("""
def nap():
    print("child pid", os.getpid())
    time.sleep(1.5)

for n in range(3):
    PythonOperator(task_id=f"nap{n}", python_callable=nap)
""")
        },
    )
    run = start_run(tenant, "job")
    tis = [queue(run, f"nap{n}") for n in range(3)]

    def work(ti: TaskInstance) -> None:
        try:
            runner.run_task_instance(tenant_id=tenant.pk, ti_id=ti.pk, try_number=ti.try_number)
        finally:
            connection.close()  # this thread's own

    workers = [threading.Thread(target=work, args=(ti,)) for ti in tis]
    for worker in workers:
        worker.start()
    time.sleep(0.8)  # the three children run; several beats have passed
    beating = [t for t in threading.enumerate() if t.name.startswith("heartbeat")]
    for worker in workers:
        worker.join(timeout=60)
    assert len(beating) == 1
    for ti in TaskInstance.objects.filter(pk__in=[ti.pk for ti in tis]):
        assert ti.state == TIState.SUCCESS
        assert ti.heartbeat_at > ti.start_date
        assert ti.pid == int(log_of(ti).split("child pid ")[1].split()[0])


def test_a_new_try_starts_without_the_previous_tries_xcoms(tenant, upload):
    upload(
        tenant,
        {
            "job.py": dag_file("""
def flaky(ti):
    ti.xcom_push(key=f"try_{ti.try_number}", value=True)
    if ti.try_number == 1:
        raise ValueError("first try fails")

PythonOperator(task_id="flaky", python_callable=flaky, retries=1, retry_delay=timedelta(0))
""")
        },
    )
    run = start_run(tenant, "job")
    first = run_one(tenant, run, "flaky")
    assert first.state == TIState.UP_FOR_RETRY
    services.schedule_run(DagRun.objects.get(pk=run.pk))
    second = run_one(tenant, run, "flaky")
    assert second.state == TIState.SUCCESS and second.try_number == 2
    keys = set(XCom.objects.filter(dag_run=run, task_id="flaky").values_list("key", flat=True))
    assert keys == {"try_2"}
    assert "first try fails" in log_of(second, 1) and "attempt 2 ended: success" in log_of(second, 2)


def test_a_missing_bundle_fails_the_try_instead_of_leaving_it_running(tenant, upload):
    from scheduler.bundles import delete_bundle_files

    upload(tenant, {"job.py": dag_file('PythonOperator(task_id="t", python_callable=lambda: 1)')})
    run = start_run(tenant, "job")
    delete_bundle_files(tenant.pk)
    ti = run_one(tenant, run, "t")
    assert ti.state == TIState.FAILED and ti.error


def test_a_deferred_task_resumes_after_its_trigger_runs_inline(tenant, upload):
    upload(
        tenant,
        {
            "job.py": dag_file("""
from tradewind.sdk.sensors.time_delta import TimeDeltaSensor

TimeDeltaSensor(task_id="wait", delta=timedelta(seconds=0.5), deferrable=True)
""")
        },
    )
    run = start_run(tenant, "job")
    deferred = run_one(tenant, run, "wait")
    assert deferred.state == TIState.DEFERRED and deferred.trigger
    runner.run_trigger_inline(deferred)
    resumed = TaskInstance.objects.get(pk=deferred.pk)
    assert resumed.state == TIState.SCHEDULED and resumed.next_method
    done = run_one(tenant, run, "wait")
    assert done.state == TIState.SUCCESS
    assert "running trigger" in log_of(done)


def test_dag_callbacks_run_sandboxed_once_the_run_finished(tenant, upload, out_dir):
    upload(
        tenant,
        {
            "job.py": f'''
from datetime import datetime
from tradewind.sdk import DAG
from tradewind.sdk.operators.python import PythonOperator

def on_failure(context):
    print("the failure callback ran")
    with open("{out_dir}/callback.txt", "w") as handle:
        handle.write(f"{{context['reason']}} {{context['ti'].task_id}} {{context['dag_run'].run_id}}")

def boom():
    raise ValueError("boom")

with DAG("job", schedule=None, start_date=datetime(2024, 1, 1), on_failure_callback=on_failure):
    PythonOperator(task_id="boom", python_callable=boom)
'''
        },
    )
    run = start_run(tenant, "job")
    assert runner.run_dag_callbacks(tenant_id=tenant.pk, dag_run_id=run.pk) is None  # still running
    assert run_one(tenant, run, "boom").state == TIState.FAILED
    services.schedule_run(DagRun.objects.get(pk=run.pk))
    run.refresh_from_db()
    assert run.state == DagRunState.FAILED
    result = runner.run_dag_callbacks(tenant_id=tenant.pk, dag_run_id=run.pk)
    assert result is not None and result["error"] is None
    reason, task_id, run_id = (out_dir / "callback.txt").read_text().split(" ", 2)
    assert (reason, task_id, run_id) == ("task_failure", "boom", run.run_id)
    run = DagRun.objects.select_related("dag").get(pk=run.pk)
    assert b"the failure callback ran" in get_log_store().read_dag_callback(run, "failure")


def test_ti_info_carries_the_run_and_the_previous_successful_run(tenant):
    from datetime import UTC, datetime

    with DAG("daily", schedule="@daily", start_date=datetime(2024, 1, 1)) as sdk_dag:
        EmptyOperator(task_id="only")
    version = make_dag_version(tenant, sdk_dag)
    first_day = datetime(2024, 3, 14, tzinfo=UTC)
    first = make_run(
        tenant, version, logical_date=first_day, data_interval=(first_day - timedelta(days=1), first_day)
    )
    assert transition_run(first, DagRunState.RUNNING, start_date=first_day)
    assert transition_run(first, DagRunState.SUCCESS, end_date=first_day + timedelta(hours=1))
    second_day = first_day + timedelta(days=1)
    second = make_run(
        tenant,
        version,
        logical_date=second_day,
        data_interval=(first_day, second_day),
        conf={"source": "tests"},
    )
    ti = TaskInstance.objects.select_related("dag_run__dag").get(dag_run=second, task_id="only")
    info = runner.build_ti_info(ti)
    assert info["dag_id"] == "daily" and info["task_id"] == "only" and info["map_index"] == -1
    assert info["run_id"] == second.run_id and info["conf"] == {"source": "tests"}
    assert info["logical_date"] == second_day.isoformat()
    assert info["data_interval_start"] == first_day.isoformat()
    assert info["prev_data_interval_start_success"] == (first_day - timedelta(days=1)).isoformat()
    assert info["prev_data_interval_end_success"] == first_day.isoformat()
    assert info["prev_logical_date_success"] == first_day.isoformat()
    assert info["run_type"] == "manual" and info["external_trigger"] is True
    assert info["next_method"] is None and info["triggering_asset_events"] == []
