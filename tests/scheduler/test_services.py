"""The engine services end to end on the database, with task outcomes applied by hand as the task runner
would report them: runs, retries, reschedules, deferrals, branching, mapping, teardowns, depends_on_past,
timeouts, removed tasks, fencing, limits, events, audit, and query-count bounds."""

from __future__ import annotations

import collections
import datetime as dt
import os
import secrets
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from scheduler import events, services
from scheduler.models import AssetDagRunQueue, AssetEvent, DagRun, TaskInstance, TaskInstanceHistory, XCom
from scheduler.states import DagRunState, RunType, TIState, transition
from tests.factories import make_dag_version, make_run
from tests.scheduler.engine import START, drive, run_once, states_of
from tradewind.audit.models import AuditEntry
from tradewind.errors import Conflict, Invalid
from tradewind.sdk import DAG, Airflow2DAG, Asset, Param, TaskGroup, task
from tradewind.sdk.operators.empty import EmptyOperator
from tradewind.sdk.operators.python import PythonOperator

pytestmark = pytest.mark.django_db


def etl_dag(dag_id: str = "etl", **task_kwargs) -> DAG:
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        extract = EmptyOperator(task_id="extract", **task_kwargs)
        transform = EmptyOperator(task_id="transform")
        load = EmptyOperator(task_id="load")
        extract >> transform >> load
    return dag


def one_task(tenant, run: DagRun, task_id: str) -> TaskInstance:
    return TaskInstance.objects.get(dag_run=run, task_id=task_id)


def queue_one(run: DagRun, task_id: str, now: dt.datetime | None = None) -> TaskInstance:
    ready = [ti for ti in services.schedule_run(run, now=now) if ti.task_id == task_id]
    queued = services.queue_task_instances(ready)
    assert len(queued) == 1, f"{task_id} was not queued"
    return queued[0]


# --- DAG versions -----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_threads_that_miss_a_dag_version_together_read_and_decode_it_once(tenant, monkeypatch) -> None:
    version = make_dag_version(tenant, etl_dag())
    # On SQLite an earlier test's rolled-back version had the same id and hash, and is cached.
    monkeypatch.setattr(services, "_spec_cache", collections.OrderedDict())
    decoded = []
    from_serialized = services.DagSpec.from_serialized

    def slow_from_serialized(serialized):  # a large DAG: the others miss the cache meanwhile
        decoded.append(serialized["dag_id"])
        time.sleep(0.05)
        return from_serialized(serialized)

    monkeypatch.setattr(services.DagSpec, "from_serialized", staticmethod(slow_from_serialized))
    together = threading.Barrier(6)
    specs = []

    def first_task() -> None:
        try:
            together.wait()
            specs.append(services.get_dag_spec(version))
        finally:
            connection.close()

    threads = [threading.Thread(target=first_task) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert decoded == ["etl"]
    assert len(specs) == 6 and all(spec is specs[0] for spec in specs)
    assert set(specs[0].tasks) == {"extract", "transform", "load"}


# --- creating runs ----------------------------------------------------------------------------------------


def test_create_dag_run_makes_a_queued_run_with_one_instance_per_task(tenant) -> None:
    run = make_run(tenant, etl_dag(retries=3), logical_date=START)
    assert run.state == DagRunState.QUEUED and run.run_id == f"manual__{START.isoformat()}"
    assert run.data_interval_start == START and run.external_trigger
    tis = {ti.task_id: ti for ti in run.task_instances.all()}
    assert set(tis) == {"extract", "transform", "load"}
    assert all(ti.state == TIState.NONE and ti.map_index == -1 and ti.try_number == 0 for ti in tis.values())
    assert tis["extract"].max_tries == 3
    assert tis["extract"].priority_weight == 3  # downstream weight rule: own + 2 downstream
    assert AuditEntry.objects.filter(
        tenant_id=tenant.pk, action="run.created", object_id=str(run.pk)
    ).exists()


def test_create_dag_run_validates_conf_against_params(tenant) -> None:
    with DAG(
        "params", schedule=None, start_date=START, params={"n": Param(1, type="integer", minimum=0)}
    ) as dag:
        EmptyOperator(task_id="t")
    version = make_dag_version(tenant, dag)
    with pytest.raises(Invalid, match="n"):
        make_run(tenant, version, conf={"n": "many"})
    with pytest.raises(Invalid):
        make_run(tenant, version, conf={"n": -1})
    assert make_run(tenant, version, conf={"n": 5}).conf == {"n": 5}
    assert services.get_dag_params(version) == {"n": 1}


def test_create_dag_run_refuses_a_taken_run_id_or_logical_date(tenant) -> None:
    version = make_dag_version(tenant, etl_dag())
    make_run(tenant, version, logical_date=START, run_id="first")
    with pytest.raises(Conflict, match="run_id"):
        make_run(tenant, version, run_id="first")
    with pytest.raises(Conflict, match="logical date"):
        make_run(tenant, version, logical_date=START)


def test_a_manual_run_infers_its_data_interval_from_the_schedule(tenant) -> None:
    with Airflow2DAG("daily", schedule_interval="@daily", start_date=START) as dag:
        EmptyOperator(task_id="t")
    run = make_run(tenant, dag, logical_date=dt.datetime(2024, 1, 5, 12, tzinfo=dt.UTC))
    assert (run.data_interval_start, run.data_interval_end) == (
        dt.datetime(2024, 1, 4, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 5, tzinfo=dt.UTC),
    )


def test_runs_without_a_logical_date_get_unique_ids(tenant) -> None:
    version = make_dag_version(tenant, etl_dag())
    first, second = make_run(tenant, version), make_run(tenant, version)
    assert first.run_id != second.run_id and first.run_id.startswith("manual__")


# --- running --------------------------------------------------------------------------------------------


def test_a_chain_runs_to_success(tenant) -> None:
    run = make_run(tenant, etl_dag())
    assert drive(run) == {"extract": "success", "transform": "success", "load": "success"}
    assert run.state == DagRunState.SUCCESS and run.start_date and run.end_date
    assert AuditEntry.objects.filter(
        tenant_id=tenant.pk, action="run.finished", object_id=str(run.pk)
    ).exists()


def test_a_failure_fails_downstream_and_the_run(tenant) -> None:
    run = make_run(tenant, etl_dag())
    final = drive(run, {"transform": {"state": "failed", "error": "boom"}})
    assert final == {"extract": "success", "transform": "failed", "load": "upstream_failed"}
    assert run.state == DagRunState.FAILED and "load" in run.failure_reason
    transform = one_task(tenant, run, "transform")
    assert transform.error == "boom" and transform.end_date is not None
    assert AuditEntry.objects.filter(
        tenant_id=tenant.pk, action="task.failed", object_id=str(transform.pk)
    ).exists()


def test_retries_wait_their_delay_and_count_tries(tenant) -> None:
    run = make_run(tenant, etl_dag(retries=2, retry_delay=dt.timedelta(seconds=60)))
    ti = run_once(run, queue_one(run, "extract"), {"state": "failed", "error": "flaky"})
    assert ti.state == TIState.UP_FOR_RETRY and ti.try_number == 1
    assert dt.timedelta(seconds=59) < ti.next_retry_at - timezone.now() <= dt.timedelta(seconds=60)
    assert TaskInstanceHistory.objects.get(task_instance=ti).error == "flaky"

    assert services.schedule_run(run) == []  # not due yet
    assert one_task(tenant, run, "extract").state == TIState.UP_FOR_RETRY
    later = timezone.now() + dt.timedelta(seconds=61)
    ti = run_once(run, queue_one(run, "extract", now=later), {"state": "failed"})
    assert (ti.state, ti.try_number) == (TIState.UP_FOR_RETRY, 2)
    ti = run_once(run, queue_one(run, "extract", now=later + dt.timedelta(seconds=61)), {"state": "failed"})
    assert (ti.state, ti.try_number) == (TIState.FAILED, 3)
    assert TaskInstanceHistory.objects.filter(task_instance=ti).count() == 2
    services.schedule_run(run)
    assert run.state == DagRunState.FAILED


def test_exponential_backoff_stays_within_airflows_bounds(tenant) -> None:
    run = make_run(
        tenant, etl_dag(retries=3, retry_delay=dt.timedelta(seconds=10), retry_exponential_backoff=True)
    )
    now = timezone.now()
    ti = run_once(run, queue_one(run, "extract"), {"state": "failed"})
    assert dt.timedelta(seconds=9) < ti.next_retry_at - now < dt.timedelta(seconds=21)
    ti = run_once(run, queue_one(run, "extract", now=now + dt.timedelta(seconds=30)), {"state": "failed"})
    assert dt.timedelta(seconds=19) < ti.next_retry_at - now < dt.timedelta(seconds=41)


def test_a_fail_fast_outcome_never_retries(tenant) -> None:
    run = make_run(tenant, etl_dag(retries=5))
    ti = run_once(run, queue_one(run, "extract"), {"state": "failed", "fail_fast": True})
    assert ti.state == TIState.FAILED


def test_a_reschedule_keeps_the_try_number(tenant) -> None:
    run = make_run(tenant, etl_dag())
    when = timezone.now() + dt.timedelta(seconds=30)
    ti = run_once(
        run, queue_one(run, "extract"), {"state": "up_for_reschedule", "reschedule_date": when.isoformat()}
    )
    assert (ti.state, ti.try_number, ti.next_retry_at) == (TIState.UP_FOR_RESCHEDULE, 1, when)
    first_start = ti.first_try_start_date
    assert services.schedule_run(run) == []
    ti = queue_one(run, "extract", now=when + dt.timedelta(seconds=1))
    assert ti.try_number == 1  # Airflow: a reschedule is the same try
    ti = run_once(run, ti)
    assert ti.state == TIState.SUCCESS and ti.first_try_start_date == first_start


def test_a_deferred_task_resumes_with_the_trigger_event_in_the_same_try(tenant) -> None:
    run = make_run(tenant, etl_dag())
    trigger = {
        "classpath": "t.Trigger",
        "kwargs": {},
        "method_name": "done",
        "next_kwargs": {"a": 1},
        "timeout_s": 60,
    }
    ti = run_once(run, queue_one(run, "extract"), {"state": "deferred", "trigger": trigger})
    assert ti.state == TIState.DEFERRED and ti.trigger == trigger and ti.next_method == "done"
    assert ti.trigger_timeout_at is not None
    started = ti.start_date
    services.resume_deferred(ti, event={"fired": True})
    ti.refresh_from_db()
    assert ti.state == TIState.SCHEDULED and ti.next_kwargs == {"a": 1, "event": {"fired": True}}
    ti = queue_one(run, "extract")
    assert ti.try_number == 1
    ti = run_once(run, ti)
    assert ti.state == TIState.SUCCESS and ti.next_method == ""
    assert ti.start_date == started == ti.first_try_start_date  # resuming is the same try


def test_a_failed_trigger_resumes_the_task_to_fail_in_the_sandbox(tenant) -> None:
    run = make_run(tenant, etl_dag())
    trigger = {"classpath": "t.Trigger", "kwargs": {}, "method_name": "done", "timeout_s": None}
    ti = run_once(run, queue_one(run, "extract"), {"state": "deferred", "trigger": trigger})
    services.resume_deferred(ti, event=None, error="Trigger/execution timeout")
    ti.refresh_from_db()
    assert (ti.state, ti.next_method, ti.next_kwargs) == (
        TIState.SCHEDULED,
        "__fail__",
        {"error": "Trigger/execution timeout"},
    )


def test_outcome_details_are_stored(tenant) -> None:
    run = make_run(tenant, etl_dag())
    outcome = {"state": "success", "rendered_fields": {"cmd": "echo 1"}, "map_index_label": "first"}
    ti = run_once(run, queue_one(run, "extract"), outcome)
    ti.refresh_from_db()
    assert ti.rendered_fields == {"cmd": "echo 1"} and ti.map_index_label == "first"
    assert ti.duration is not None and ti.hostname == "test-host" and ti.pid == 4242


# --- branching, short-circuit, teardown -------------------------------------------------------------------


def branch_dag() -> DAG:
    with DAG("branching", schedule=None, start_date=START) as dag:
        branch = EmptyOperator(task_id="branch")
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        b_next = EmptyOperator(task_id="b_next")
        join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
        branch >> [a, b]
        b >> b_next
        [a, b_next] >> join
    return dag


def test_branch_skips_the_other_path_when_it_finishes(tenant) -> None:
    run = make_run(tenant, branch_dag())
    run_once(run, queue_one(run, "branch"), {"state": "success", "followed": ["a"]})
    assert one_task(tenant, run, "b").state == TIState.SKIPPED  # at once, before any evaluation
    final = drive(run)
    assert final == {
        "branch": "success",
        "a": "success",
        "b": "skipped",
        "b_next": "skipped",
        "join": "success",
    }
    assert run.state == DagRunState.SUCCESS


def short_circuit_dag() -> DAG:
    with DAG("short", schedule=None, start_date=START) as dag:
        gate = EmptyOperator(task_id="gate")
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b", trigger_rule="all_done")
        gate >> a >> b
    return dag


@pytest.mark.parametrize(("respect", "expected_b"), [(False, "skipped"), (True, "success")])
def test_short_circuit_modes(tenant, respect: bool, expected_b: str) -> None:
    run = make_run(tenant, short_circuit_dag())
    outcome = {"state": "success", "skip_downstream": {"task_ids": ["a"], "respect_trigger_rules": respect}}
    final = drive(run, {"gate": outcome})
    assert final == {"gate": "success", "a": "skipped", "b": expected_b}
    assert run.state == DagRunState.SUCCESS


def teardown_dag() -> DAG:
    with DAG("teardown", schedule=None, start_date=START) as dag:
        setup = EmptyOperator(task_id="setup").as_setup()
        work = EmptyOperator(task_id="work")
        td = EmptyOperator(task_id="td").as_teardown(setups=setup)
        setup >> work >> td
    return dag


def test_teardown_runs_after_a_failed_work_task_and_the_run_fails(tenant) -> None:
    run = make_run(tenant, teardown_dag())
    assert drive(run, {"work": {"state": "failed"}}) == {
        "setup": "success",
        "work": "failed",
        "td": "success",
    }
    assert run.state == DagRunState.FAILED


def test_a_failed_teardown_leaves_the_run_successful(tenant) -> None:
    run = make_run(tenant, teardown_dag())
    assert drive(run, {"td": {"state": "failed"}})["td"] == "failed"
    assert run.state == DagRunState.SUCCESS


# --- mapping --------------------------------------------------------------------------------------------


def mapping_dag() -> DAG:
    with DAG("mapping", schedule=None, start_date=START) as dag:

        @task
        def make():
            return [1, 2, 3]

        @task
        def add(x, y):
            return x + y

        @task
        def double(v):
            return v * 2

        @task
        def total(values):
            return sum(values)

        total(double.expand(v=add.partial(y=1).expand(x=make())))
    return dag


def test_mapping_over_xcom_and_over_a_mapped_task(tenant) -> None:
    run = make_run(tenant, mapping_dag())
    final = drive(
        run,
        {
            "make": {"xcom": [1, 2, 3]},
            "add": lambda ti: {"xcom": ti.map_index + 2},
            "double": lambda ti: {"xcom": ti.map_index * 4},
        },
    )
    assert final == {
        "make": "success",
        **{f"add[{i}]": "success" for i in range(3)},
        **{f"double[{i}]": "success" for i in range(3)},
        "total": "success",
    }
    assert run.state == DagRunState.SUCCESS


def test_mapping_over_a_multiple_outputs_key(tenant) -> None:
    with DAG("outputs", schedule=None, start_date=START) as dag:

        @task(multiple_outputs=True)
        def split():
            return {"numbers": [1, 2, 3], "factor": 10}

        @task
        def times(x, factor):
            return x * factor

        parts = split()
        times.partial(factor=parts["factor"]).expand(x=parts["numbers"])
    run = make_run(tenant, dag)
    whole = {"numbers": [1, 2, 3], "factor": 10}
    final = drive(run, {"split": {"xcom": whole, "xcoms": whole}})
    assert final == {"split": "success", "times[0]": "success", "times[1]": "success", "times[2]": "success"}


def test_mapping_over_an_empty_list_skips_the_mapped_tasks(tenant) -> None:
    run = make_run(tenant, mapping_dag())
    assert drive(run, {"make": {"xcom": []}}) == {
        "make": "success",
        "add": "skipped",
        "double": "skipped",
        "total": "skipped",
    }
    assert run.state == DagRunState.SUCCESS


def test_mapping_over_a_value_that_is_not_a_list_fails_upstream(tenant) -> None:
    run = make_run(tenant, mapping_dag())
    assert drive(run, {"make": {"xcom": 7}})["add"] == "upstream_failed"
    assert run.state == DagRunState.FAILED


# --- depends_on_past, timeout, deadlock, removed tasks ----------------------------------------------------


def test_depends_on_past_waits_for_the_previous_run_and_deadlocks_after_its_failure(tenant) -> None:
    version = make_dag_version(tenant, etl_dag(depends_on_past=True))
    first = make_run(tenant, version, run_type=RunType.SCHEDULED, logical_date=START)
    second = make_run(tenant, version, run_type=RunType.SCHEDULED, logical_date=START + dt.timedelta(days=1))
    queued = queue_one(first, "extract")
    assert services.schedule_run(second) == []  # the previous extract is still queued
    assert second.state == DagRunState.RUNNING
    run_once(first, queued, {"state": "failed"})
    services.schedule_run(second)
    assert second.state == DagRunState.FAILED
    assert "deadlock" in second.failure_reason and "depends_on_past" in second.failure_reason


def test_depends_on_past_runs_after_a_successful_previous_run(tenant) -> None:
    version = make_dag_version(tenant, etl_dag(depends_on_past=True))
    first = make_run(tenant, version, run_type=RunType.SCHEDULED, logical_date=START)
    drive(first)
    second = make_run(tenant, version, run_type=RunType.SCHEDULED, logical_date=START + dt.timedelta(days=1))
    assert drive(second)["extract"] == "success"


def test_dagrun_timeout_skips_unfinished_tasks_and_a_late_finish_changes_nothing(tenant) -> None:
    with DAG("slow", schedule=None, start_date=START, dagrun_timeout=dt.timedelta(seconds=60)) as dag:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    run = make_run(tenant, dag)
    ti = queue_one(run, "a")
    running = services.start_task_instance(
        tenant_id=tenant.pk, ti_id=ti.pk, try_number=1, hostname="h", pid=1
    )
    services.schedule_run(run, now=timezone.now() + dt.timedelta(seconds=120))
    assert run.state == DagRunState.FAILED and "dagrun_timeout" in run.failure_reason
    assert states_of(run) == {"a": "skipped", "b": "skipped"}
    services.finish_task_instance(running, {"state": "success"})
    assert one_task(tenant, run, "a").state == TIState.SKIPPED


def test_a_run_pinned_to_an_old_version_keeps_its_tasks(tenant) -> None:
    old = make_dag_version(tenant, etl_dag())
    run = make_run(tenant, old)
    with DAG("etl", schedule=None, start_date=START) as smaller:
        EmptyOperator(task_id="extract") >> EmptyOperator(task_id="transform")
    new = make_dag_version(tenant, smaller)
    services.schedule_run(run)
    assert one_task(tenant, run, "load").state == TIState.NONE  # still in the run's own version
    DagRun.objects.filter(pk=run.pk).update(dag_version=new)  # the run is re-pinned to the new version
    assert drive(run) == {"extract": "success", "transform": "success", "load": "removed"}
    assert run.state == DagRunState.SUCCESS


# --- fencing and limits -------------------------------------------------------------------------------------


def test_a_stale_transition_returns_false(tenant) -> None:
    run = make_run(tenant, etl_dag())
    services.schedule_run(run)
    stale = one_task(tenant, run, "extract")
    fresh = one_task(tenant, run, "extract")
    assert transition(fresh, TIState.QUEUED)
    assert not transition(stale, TIState.QUEUED)


def test_a_duplicate_or_late_start_does_nothing(tenant, other_tenant) -> None:
    run = make_run(tenant, etl_dag())
    ti = queue_one(run, "extract")
    assert (
        services.start_task_instance(
            tenant_id=other_tenant.pk, ti_id=ti.pk, try_number=1, hostname="h", pid=1
        )
        is None
    )
    assert (
        services.start_task_instance(tenant_id=tenant.pk, ti_id=ti.pk, try_number=2, hostname="h", pid=1)
        is None
    )
    assert services.start_task_instance(tenant_id=tenant.pk, ti_id=ti.pk, try_number=1, hostname="h", pid=1)
    assert (
        services.start_task_instance(tenant_id=tenant.pk, ti_id=ti.pk, try_number=1, hostname="h", pid=2)
        is None
    )
    assert one_task(tenant, run, "extract").pid == 1


def test_a_second_finish_and_a_second_queue_change_nothing(tenant) -> None:
    run = make_run(tenant, etl_dag(retries=1))
    ti = queue_one(run, "extract")
    assert services.queue_task_instances([ti]) == []  # already queued
    running = services.start_task_instance(
        tenant_id=tenant.pk, ti_id=ti.pk, try_number=1, hostname="h", pid=1
    )
    stale = TaskInstance.objects.get(pk=ti.pk)
    services.finish_task_instance(running, {"state": "success"})
    services.finish_task_instance(stale, {"state": "failed"})
    ti.refresh_from_db()
    assert (ti.state, ti.try_number) == (TIState.SUCCESS, 1)
    assert not TaskInstanceHistory.objects.filter(task_instance=ti).exists()


def test_max_active_tasks_limits_what_a_run_queues(tenant) -> None:
    with DAG("wide", schedule=None, start_date=START, max_active_tasks=2) as dag:
        for i in range(5):
            EmptyOperator(task_id=f"t{i}")
    run = make_run(tenant, dag)
    ready = services.schedule_run(run)
    assert len(ready) == 5
    first = services.queue_task_instances(ready)
    assert len(first) == 2
    assert services.queue_task_instances(services.schedule_run(run)) == []
    run_once(run, first[0])
    assert len(services.queue_task_instances(services.schedule_run(run))) == 1


def test_other_tenants_runs_are_untouched(tenant, other_tenant) -> None:
    mine, theirs = make_run(tenant, etl_dag()), make_run(other_tenant, etl_dag())
    drive(mine)
    assert set(states_of(theirs).values()) == {"none"}
    assert DagRun.objects.get(pk=theirs.pk).state == DagRunState.QUEUED


# --- assets, events, query count --------------------------------------------------------------------------


def test_asset_events_are_recorded_and_queued_for_consumers(tenant) -> None:
    producer = make_run(tenant, etl_dag())
    with DAG("consumer", schedule=[Asset("s3://bucket/data")], start_date=START) as consumer:
        EmptyOperator(task_id="read")
    consumer_version = make_dag_version(tenant, consumer)
    outcome = {"state": "success", "asset_events": [{"uri": "s3://bucket/data", "extra": {"rows": 3}}]}
    run_once(producer, queue_one(producer, "extract"), outcome)
    event = AssetEvent.objects.get(tenant=tenant)
    assert (event.asset.uri, event.extra, event.source_task_id) == (
        "s3://bucket/data",
        {"rows": 3},
        "extract",
    )
    assert AssetDagRunQueue.objects.filter(target_dag=consumer_version.dag, asset=event.asset).exists()


def test_events_are_published_after_commit(tenant, django_capture_on_commit_callbacks) -> None:
    received: list[dict] = []
    unsubscribe = events.subscribe(received.append)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run = make_run(tenant, etl_dag())
        with django_capture_on_commit_callbacks(execute=False) as pending:
            services.schedule_run(run)
        assert received == [
            {
                "tenant": tenant.pk,
                "dag_id": "etl",
                "run_id": run.run_id,
                "task_id": None,
                "map_index": None,
                "state": "queued",
                "try_number": None,
            }
        ]
        for callback in pending:
            callback()
    finally:
        unsubscribe()
    assert {
        "tenant": tenant.pk,
        "dag_id": "etl",
        "run_id": run.run_id,
        "task_id": "extract",
        "map_index": -1,
        "state": "scheduled",
        "try_number": 0,
    } in received
    assert received[-1]["state"] == "running" and received[-1]["task_id"] is None


def test_an_evaluation_wakes_schedulers_only_when_a_run_changes_state(
    tenant, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    """What a pass decides for task instances it queues in the same pass (waking its own scheduler would
    only cost a pass); a run that starts or ends may let another run start."""
    from scheduler import wakeup

    woken: list[int] = []
    monkeypatch.setattr(wakeup, "notify", lambda tenant_id, ended=0: woken.append(tenant_id))
    run = make_run(tenant, etl_dag())
    with django_capture_on_commit_callbacks(execute=True):
        services.evaluate_run(run)  # starts the run (a wake-up) and schedules extract (none)
    assert woken == [tenant.pk]
    run_once(run, queue_one(run, "extract"))
    woken.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.evaluate_run(run)  # schedules transform: no wake-up
    assert woken == []
    for task_id in ("transform", "load"):
        run_once(run, queue_one(run, task_id))
    woken.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.evaluate_run(run)  # the run succeeds
    assert run.state == DagRunState.SUCCESS and woken == [tenant.pk]


def test_a_wake_up_counts_the_tries_its_changes_ended(
    tenant, other_tenant, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """A resting scheduler passes once every try it left queued or running has ended: the wake-ups say how
    many ended (task instances that are no longer queued or running)."""
    from scheduler import wakeup

    woken: list[tuple[int, int]] = []
    monkeypatch.setattr(wakeup, "notify", lambda tenant_id, ended=0: woken.append((tenant_id, ended)))

    def ti(tenant_id: int, state: str) -> dict:
        return {"tenant": tenant_id, "task_id": "t", "map_index": -1, "state": state, "try_number": 1}

    run_event = {"tenant": other_tenant.pk, "task_id": None, "map_index": None, "state": "success"}
    batch = [ti(tenant.pk, "running"), ti(tenant.pk, "success"), ti(tenant.pk, "up_for_retry"), run_event]
    with django_capture_on_commit_callbacks(execute=True):
        events.publish_on_commit(batch)
    assert woken == [(tenant.pk, 2), (other_tenant.pk, 0)]
    woken.clear()
    with django_capture_on_commit_callbacks(execute=True):
        events.publish_on_commit([ti(tenant.pk, "queued"), ti(tenant.pk, "running")])
    assert woken == []  # echoes of what a scheduler or worker just did wake nobody


@pytest.mark.redis
def test_ended_tries_count_once_through_redis_even_in_the_process_that_published_them(settings) -> None:
    if not settings.REDIS_URL:
        pytest.skip("Redis is not reachable (CI sets REQUIRE_SERVICES=1, which makes this a failure)")
    import redis

    from scheduler import wakeup

    # An id no test database gives: parallel test processes share Redis, and their tenants' ids collide.
    tenant_id = 10**12 + secrets.randbelow(10**12)

    def ended_within(seconds: float) -> int:
        total, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            total += wakeup.wait([tenant_id], 0.05).get(tenant_id, 0)
        return total

    wakeup.start_listener()
    wakeup.notify(tenant_id, 2)  # heard here at once, and back from Redis
    assert ended_within(0.5) == 2
    redis.Redis.from_url(settings.REDIS_URL).publish(
        f"{wakeup.CHANNEL_PREFIX}{tenant_id}", b"3"
    )  # a worker's
    assert ended_within(0.5) == 3


def test_schedule_run_on_a_100_task_run_takes_few_queries(tenant, django_assert_max_num_queries) -> None:
    with DAG("fanout", schedule=None, start_date=START) as dag:
        root = EmptyOperator(task_id="root")
        with TaskGroup("many"):
            leaves = [EmptyOperator(task_id=f"t{i:02d}") for i in range(99)]
        root >> leaves
    run = make_run(tenant, dag)
    with django_assert_max_num_queries(10):
        ready = services.schedule_run(run)
    run_once(run, services.queue_task_instances(ready)[0])
    with django_assert_max_num_queries(10):
        ready = services.schedule_run(run)
    assert len(ready) == 99
    with django_assert_max_num_queries(8):
        queued = services.queue_task_instances(ready)
    assert len(queued) == 16  # the DAG's default max_active_tasks


def test_starting_and_finishing_a_try_takes_two_statements(tenant, django_assert_max_num_queries) -> None:
    """Every task try pays for these: a fenced UPDATE to start returning the task instance with its run, DAG
    and version (which the finish reuses), and a fenced UPDATE to finish; no transaction. Elsewhere than on
    PostgreSQL the start's read is a statement of its own."""
    run = make_run(tenant, etl_dag())
    ti = queue_one(run, "extract")
    with django_assert_max_num_queries(2 if connection.vendor == "postgresql" else 3):
        running = services.start_task_instance(
            tenant_id=tenant.pk, ti_id=ti.pk, try_number=1, hostname="h", pid=1
        )
        services.finish_task_instance(running, {"state": "success"})
    ti.refresh_from_db()
    assert ti.state == TIState.SUCCESS and ti.start_date == ti.first_try_start_date is not None


def test_a_success_writes_the_tries_pending_xcoms_in_its_statement(tenant, django_assert_max_num_queries):
    run = make_run(tenant, etl_dag())
    ti = queue_one(run, "extract")
    running = services.start_task_instance(
        tenant_id=tenant.pk, ti_id=ti.pk, try_number=1, hostname="h", pid=1
    )
    pending = {"return_value": ({"rows": 3}, 10), "extra": ("", 2)}
    # Elsewhere: the UPDATE and the two inserts, in a transaction (a savepoint in the test's own).
    with django_assert_max_num_queries(1 if connection.vendor == "postgresql" else 5):
        services.finish_task_instance(running, {"state": "success"}, pending)
    assert one_task(tenant, run, "extract").state == TIState.SUCCESS
    stored = dict(XCom.objects.filter(dag_run=run, task_id="extract").values_list("key", "value"))
    assert stored == {"return_value": {"rows": 3}, "extra": ""}


def test_pending_xcoms_of_a_try_that_no_longer_runs_are_not_written(tenant) -> None:
    run = make_run(tenant, etl_dag())
    ti = queue_one(run, "extract")
    running = services.start_task_instance(
        tenant_id=tenant.pk, ti_id=ti.pk, try_number=1, hostname="h", pid=1
    )
    assert transition(TaskInstance.objects.get(pk=ti.pk), TIState.FAILED)  # a user marked it meanwhile
    services.finish_task_instance(running, {"state": "success"}, {"return_value": (1, 1)})
    assert one_task(tenant, run, "extract").state == TIState.FAILED
    assert not XCom.objects.filter(dag_run=run).exists()


def test_pending_xcoms_of_a_failed_try_are_kept_as_pushed(tenant) -> None:
    run = make_run(tenant, etl_dag(retries=1))
    ti = queue_one(run, "extract")
    running = services.start_task_instance(
        tenant_id=tenant.pk, ti_id=ti.pk, try_number=1, hostname="h", pid=1
    )
    services.finish_task_instance(running, {"state": "failed", "error": "boom"}, {"partial": (7, 1)})
    assert one_task(tenant, run, "extract").state == TIState.UP_FOR_RETRY
    assert XCom.objects.get(dag_run=run, task_id="extract").value == 7


def test_a_started_try_is_read_as_its_start_left_it(tenant) -> None:
    run = make_run(tenant, etl_dag())
    ti = queue_one(run, "extract")
    running = services.start_task_instance(
        tenant_id=tenant.pk, ti_id=ti.pk, try_number=1, hostname="h", pid=7
    )
    stored = TaskInstance.objects.get(pk=ti.pk)
    assert (running.state, running.pid, running.hostname) == (TIState.RUNNING, 7, "h")
    assert running.start_date == stored.start_date == running.first_try_start_date is not None
    assert running.heartbeat_at == stored.heartbeat_at
    assert (running.dag_run.run_id, running.dag_run.dag.dag_id) == (run.run_id, "etl")
    assert running.dag_run.dag_version_id == run.dag_version_id


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_evaluations_of_one_run_expand_it_once(tenant) -> None:
    from concurrent.futures import ThreadPoolExecutor

    if connection.vendor != "postgresql":
        pytest.skip("concurrent schedulers need PostgreSQL's row locks; embedded SQLite has one writer")
    with DAG("wide_map", schedule=None, start_date=START) as dag:
        PythonOperator.partial(task_id="m", python_callable=print).expand(op_args=[[i] for i in range(40)])
    run = make_run(tenant, dag)

    def evaluate_once(_: int) -> int:
        try:
            return len(services.schedule_run(DagRun.objects.get(pk=run.pk)))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(evaluate_once, range(4)))
    assert max(results) == 40
    assert sorted(TaskInstance.objects.filter(dag_run=run).values_list("map_index", flat=True)) == list(
        range(40)
    )


def test_a_prepared_read_gives_what_the_orm_gives_without_compiling_again(tenant, monkeypatch) -> None:
    from django.db.models.sql.compiler import SQLCompiler

    from scheduler.queries import PreparedRead

    run = make_run(tenant, etl_dag())
    ti = queue_one(run, "extract")
    read = PreparedRead(
        lambda pk: TaskInstance.objects.select_related("dag_run__dag", "dag_run__dag_version").filter(pk=pk)
    )
    assert read.get(ti.pk).dag_run.dag.dag_id == "etl"  # compiles here, once for this thread
    compiled, converters_found = [], []
    original, original_converters = SQLCompiler.as_sql, SQLCompiler.get_converters
    monkeypatch.setattr(
        SQLCompiler, "as_sql", lambda self, *a, **k: compiled.append(1) or original(self, *a, **k)
    )
    monkeypatch.setattr(
        SQLCompiler,
        "get_converters",
        lambda self, *a, **k: converters_found.append(1) or original_converters(self, *a, **k),
    )
    loaded = read.get(ti.pk)
    expected = TaskInstance.objects.select_related("dag_run__dag", "dag_run__dag_version").get(pk=ti.pk)
    assert len(compiled) == len(converters_found) == 1  # only the plain ORM read above compiled
    assert [getattr(loaded, f.attname) for f in TaskInstance._meta.concrete_fields] == [
        getattr(expected, f.attname) for f in TaskInstance._meta.concrete_fields
    ]
    assert loaded.queued_at is not None and loaded.queued_at.tzinfo is not None  # converted as the ORM does
    assert TaskInstance.dag_run.is_cached(loaded) and loaded.dag_run.dag_version == run.dag_version
    assert read.get(ti.pk + 10_000) is None
    with pytest.raises(ValueError, match="as a parameter"):
        PreparedRead(lambda pk: TaskInstance.objects.filter(pk=1)).get(1)


def test_a_prepared_read_after_an_update_sees_only_the_rows_it_changed_as_it_left_them(tenant) -> None:
    from scheduler.queries import PreparedRead
    from scheduler.states import update_statement

    run = make_run(tenant, etl_dag())
    ti = queue_one(run, "extract")
    read = PreparedRead(lambda pk: TaskInstance.objects.select_related("dag_run").filter(pk=pk))

    def renamed(hostname: str, state: str) -> tuple[str, list]:
        return update_statement(
            TaskInstance, {"id": ti.pk, "state": state}, {"hostname": hostname}, None, "default"
        )

    moved = read.get(ti.pk, after=renamed("worker-1", TIState.QUEUED))
    assert (moved.hostname, moved.dag_run.run_id) == ("worker-1", run.run_id)
    assert (
        read.get(ti.pk, after=renamed("worker-2", TIState.RUNNING)) is None
    )  # the fence held: no row changed
    assert TaskInstance.objects.get(pk=ti.pk).hostname == "worker-1"
    if connection.vendor == "postgresql":
        other_table = update_statement(DagRun, {"id": run.pk}, {"note": "x"}, None, "default")
        with pytest.raises(ValueError, match="can only follow an UPDATE of"):
            read.get(ti.pk, after=other_table)


def test_a_prepared_read_takes_moments_as_the_database_compares_them(tenant) -> None:
    from zoneinfo import ZoneInfo

    from scheduler.queries import PreparedRead

    run = make_run(tenant, etl_dag())
    ti = queue_one(run, "extract")
    since = PreparedRead(
        lambda tenant_id, moment: (
            TaskInstance.objects.for_tenant(tenant_id).filter(queued_at__gte=moment).values_list("pk")
        )
    )
    assert since.all(tenant.pk, ti.queued_at) == [(ti.pk,)]
    assert since.all(tenant.pk, ti.queued_at + dt.timedelta(microseconds=1)) == []  # swapped in, exactly
    assert since.all(tenant.pk, ti.queued_at.astimezone(ZoneInfo("Asia/Kolkata"))) == [(ti.pk,)]  # an instant
    assert since.all(tenant.pk + 1, ti.queued_at) == []
    between = PreparedRead(
        lambda run_id, start, end: TaskInstance.objects.filter(
            dag_run_id=run_id, queued_at__gt=start, queued_at__lte=end
        ).order_by("pk")
    )
    second = dt.timedelta(seconds=1)
    assert [t.pk for t in between.all(run.pk, ti.queued_at - second, ti.queued_at)] == [ti.pk]
    assert between.all(run.pk, ti.queued_at, ti.queued_at + second) == []  # each moment in its own place


def test_a_prepared_read_takes_lists_of_names(tenant) -> None:
    from scheduler.queries import PreparedRead

    run = make_run(tenant, etl_dag())
    by_task = PreparedRead(
        lambda run_id, task_ids: TaskInstance.objects.filter(
            dag_run_id=run_id, task_id__in=task_ids
        ).values_list("task_id")
    )
    for task_ids in (["load"], ["extract", "load"], ["load", "nowhere"], [], ["x"] * 20):
        expected = sorted({t for t in task_ids if t in ("extract", "load", "transform")})
        assert sorted(t for (t,) in by_task.all(run.pk, task_ids)) == expected


def test_a_prepared_read_of_several_ids_gives_every_row_and_values_as_the_orm_does(tenant) -> None:
    from django.db.models import Count, Max

    from scheduler.queries import PreparedRead

    run = make_run(tenant, etl_dag())
    other = make_run(tenant, etl_dag("other"))
    queue_one(run, "extract")

    def tis(tenant_id, run_id):
        return TaskInstance.objects.for_tenant(tenant_id).filter(dag_run_id=run_id).order_by("task_id")

    rows = PreparedRead(tis)
    assert [ti.task_id for ti in rows.all(tenant.pk, run.pk)] == ["extract", "load", "transform"]
    assert [ti.pk for ti in rows.all(tenant.pk, other.pk)] == list(
        tis(tenant.pk, other.pk).values_list("pk", flat=True)
    )
    assert rows.all(tenant.pk + 1, run.pk) == []  # the ids really are swapped in, each in its place
    assert rows.get(tenant.pk, run.pk).dag_run_id == run.pk
    by_ids = PreparedRead(lambda ids: TaskInstance.objects.filter(pk__in=ids).order_by("pk"))
    pks = sorted(ti.pk for ti in [*tis(tenant.pk, run.pk), *tis(tenant.pk, other.pk)])
    # Compiled once per length; an empty list and one longer than MAX_LIST go through the ORM.
    for ids in (pks[:1], pks[1:2], pks[:2], pks[::-1], [], pks * 3):
        assert [ti.pk for ti in by_ids.all(ids)] == sorted(set(ids))

    def counts(tenant_id):
        return (
            TaskInstance.objects.for_tenant(tenant_id)
            .values_list("dag_run_id", "state")
            .annotate(n=Count("pk"), queued=Max("queued_at"))
            .values_list("dag_run_id", "state", "n", "queued")
            .order_by("dag_run_id", "state")
        )

    values = PreparedRead(counts).all(tenant.pk)
    assert values == list(counts(tenant.pk)) and len(values) == 3
    queued_at = next(row[3] for row in values if row[1] == TIState.QUEUED)
    assert queued_at is not None and queued_at.tzinfo is not None  # converted as the ORM does
    with pytest.raises(ValueError, match="in order"):
        PreparedRead(
            lambda tenant_id: (
                TaskInstance.objects.for_tenant(tenant_id)
                .values_list("state")
                .annotate(n=Count("pk"))
                .values_list("n", "state")
            )
        ).all(tenant.pk)


def test_postgresql_prepares_the_statements_every_try_repeats(tenant) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (CI runs the suite on PostgreSQL)")
    run = make_run(tenant, etl_dag())
    ti = queue_one(run, "extract")
    for _ in range(3):
        assert services.start_task_instance(
            tenant_id=tenant.pk, ti_id=ti.pk, try_number=1, hostname="h", pid=1
        )
        TaskInstance.objects.filter(pk=ti.pk).update(state=TIState.QUEUED)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        prepared = cursor.fetchall()
    starts = [
        executions
        for statement, executions in prepared
        if statement.startswith('WITH "scheduler_taskinstance" AS (UPDATE "scheduler_taskinstance" SET')
        and 'INNER JOIN "scheduler_dagrun"' in statement
    ]
    assert starts and max(starts) >= 1  # prepared at its second execution, since run unparsed


def test_a_warmed_up_thread_runs_its_first_tries_on_prepared_statements(tenant) -> None:
    """warm_up_thread prepares a try's start and its finish (a success with and without a returned value)
    with parameters typed as a real try's: its marker id is a bigint, these ids are small ones, and the
    worker's pid is given, not None. Both statements of each try then run prepared; nothing new is prepared."""
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (CI runs the suite on PostgreSQL)")

    def executions() -> dict[str, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, generic_plans + custom_plans FROM pg_prepared_statements AS p"
                " WHERE p.statement NOT LIKE '%%pg_prepared_statements AS p%%'"  # once prepared, this one too
            )
            return dict(cursor.fetchall())

    services.warm_up_thread()
    run = make_run(tenant, etl_dag())
    for task_id, pending in (("extract", {"return_value": ("rows", 6)}), ("transform", {})):
        ti = queue_one(run, task_id)
        before = executions()
        running = services.start_task_instance(
            tenant_id=tenant.pk, ti_id=ti.pk, try_number=1, hostname="h", pid=os.getpid()
        )
        services.finish_task_instance(running, {"state": "success", "rendered_fields": {}}, pending)
        after = executions()
        assert set(after) == set(before)
        assert sum(after.values()) - sum(before.values()) == 2
    assert one_task(tenant, run, "transform").state == TIState.SUCCESS
    assert XCom.objects.get(dag_run=run, task_id="extract").value == "rows"


def test_a_resumed_try_keeps_its_start_dates_and_json_fields_round_trip(tenant) -> None:
    run = make_run(tenant, etl_dag())
    ti = queue_one(run, "extract")
    earlier = timezone.now() - dt.timedelta(minutes=5)
    TaskInstance.objects.filter(pk=ti.pk).update(
        next_method="execute_complete", start_date=earlier, first_try_start_date=earlier
    )
    assert (
        services.start_task_instance(tenant_id=tenant.pk + 1, ti_id=ti.pk, try_number=1, hostname="h", pid=1)
        is None
    )
    started = services.start_task_instance(
        tenant_id=tenant.pk, ti_id=ti.pk, try_number=1, hostname="h", pid=7
    )
    assert (started.state, started.start_date, started.first_try_start_date, started.pid) == (
        TIState.RUNNING,
        earlier,
        earlier,
        7,
    )
    assert transition(started, TIState.DEFERRED, next_kwargs={"event": [1, "two"]}, trigger=None)
    started.refresh_from_db()
    assert started.next_kwargs == {"event": [1, "two"]} and started.trigger is None


def test_large_documents_are_bulk_inserted_as_plain_parameters_and_round_trip(tenant) -> None:
    from django.test.utils import CaptureQueriesContext

    from scheduler.models import ParsedFile

    documents = [
        {"dags": [{"doc_md": 'say "hi" \\ {{ ds }}', "tasks": [{"task_id": f"t{i}", "n": i}]}], "error": None}
        for i in range(3)
    ]
    with CaptureQueriesContext(connection) as queries:
        ParsedFile.objects.bulk_create(
            ParsedFile(tenant=tenant, cache_key=f"k{i}", result=document)
            for i, document in enumerate(documents)
        )
    [insert] = [q["sql"] for q in queries if 'INSERT INTO "scheduler_parsedfile"' in q["sql"]]
    assert "UNNEST" not in insert.upper()  # one parameter per document, not an escaped array literal
    stored = ParsedFile.objects.filter(tenant=tenant).order_by("cache_key").values_list("result", flat=True)
    assert list(stored) == documents
