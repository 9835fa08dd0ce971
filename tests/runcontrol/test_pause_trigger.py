"""Pausing DAGs and triggering runs: a paused DAG gets no new runs and its running runs schedule no more
task instances; manual runs with conf validated against the DAG's params."""

from __future__ import annotations

import datetime as dt

import pytest

from scheduler import loop, services
from scheduler.models import Dag, DagRun
from scheduler.states import DagRunState, RunType, TIState
from tests.factories import make_dag_version, make_run
from tests.runcontrol.helpers import ACTOR, audit_actions, chain_dag, ti
from tests.scheduler.engine import START, drive, states_of
from tradewind.accounts.actors import Actor
from tradewind.audit.models import AuditEntry
from tradewind.errors import Conflict, Invalid, NotFound
from tradewind.sdk import DAG, Param
from tradewind.sdk.operators.empty import EmptyOperator
from workers.executors import LocalExecutor

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2024, 1, 3, 12, tzinfo=dt.UTC)


def scheduled_dag(tenant) -> Dag:
    version = make_dag_version(tenant, chain_dag("daily", schedule="@daily", catchup=True, max_active_runs=1))
    dag = version.dag
    loop.refresh_next_dagrun(dag, version.serialized)
    dag.refresh_from_db()
    return dag


def pause(tenant, dag, is_paused=True):
    return services.set_paused(tenant=tenant, actor=ACTOR, dag=dag, is_paused=is_paused)


def test_a_paused_dag_gets_no_new_runs_until_unpaused(tenant) -> None:
    dag = scheduled_dag(tenant)
    dag = pause(tenant, dag)
    assert dag.is_paused
    result = loop.TenantScheduler(tenant.pk, LocalExecutor(parallelism=1)).run_pass(now=NOW)
    assert result.runs_created == 0 and not DagRun.objects.filter(dag=dag).exists()
    dag = pause(tenant, dag, False)
    assert not dag.is_paused and dag.next_dagrun_create_after is not None
    assert loop.create_due_runs(tenant, NOW) == 1
    assert DagRun.objects.get(dag=dag).logical_date == START
    assert audit_actions(tenant)[-3:-1] == ["dag.paused", "dag.unpaused"]


def test_pausing_stops_scheduling_the_tasks_of_running_runs(tenant) -> None:
    run = make_run(tenant, chain_dag())
    services.schedule_run(run)
    assert run.state == DagRunState.RUNNING and ti(run, "a").state == TIState.SCHEDULED
    pause(tenant, run.dag)
    # What the scheduler chose but had not queued waits again; a pass queues and schedules nothing.
    assert ti(run, "a").state == TIState.NONE
    result = loop.TenantScheduler(tenant.pk, LocalExecutor(parallelism=1)).run_pass(now=NOW)
    assert result.tasks_queued == 0
    run.refresh_from_db()
    assert run.state == DagRunState.RUNNING and set(states_of(run).values()) == {"none"}
    pause(tenant, run.dag, False)
    assert [t.task_id for t in services.schedule_run(run)] == ["a"]


def test_a_running_task_of_a_paused_dag_finishes(tenant) -> None:
    run = make_run(tenant, chain_dag())
    (queued,) = services.queue_task_instances(services.schedule_run(run))
    started = services.start_task_instance(
        tenant_id=tenant.pk, ti_id=queued.pk, try_number=queued.try_number, hostname="h", pid=None
    )
    pause(tenant, run.dag)
    services.finish_task_instance(started, {"state": "success"})
    assert ti(run, "a").state == TIState.SUCCESS and ti(run, "b").state == TIState.NONE


def test_pausing_twice_changes_nothing(tenant) -> None:
    dag = scheduled_dag(tenant)
    pause(tenant, dag)
    pause(tenant, dag)
    assert audit_actions(tenant).count("dag.paused") == 1


# --- trigger ----------------------------------------------------------------------------------------------


def params_dag(tenant) -> Dag:
    with DAG(
        "with_params",
        schedule=None,
        start_date=START,
        params={"n": Param(1, type="integer", minimum=0), "name": Param("x", type="string")},
    ) as dag:
        EmptyOperator(task_id="t")
    return make_dag_version(tenant, dag).dag


def trigger(tenant, dag, **kwargs):
    return services.trigger_run(tenant=tenant, actor=ACTOR, dag=dag, **kwargs)


def test_trigger_creates_a_queued_manual_run_that_the_scheduler_runs(tenant, make_member) -> None:
    dag = params_dag(tenant)
    user = make_member(tenant)
    run = services.trigger_run(
        tenant=tenant, actor=Actor.for_user(user), dag=dag, conf={"n": 5}, note="by hand"
    )
    assert run.state == DagRunState.QUEUED and run.run_type == RunType.MANUAL and run.external_trigger
    assert run.conf == {"n": 5} and run.note == "by hand" and run.triggered_by_id == user.pk
    assert run.logical_date is None and run.run_id.startswith("manual__")
    entry = AuditEntry.objects.filter(tenant_id=tenant.pk, action="run.triggered").get()
    assert entry.actor_user_id == user.pk and entry.after["conf"] == {"n": 5}
    assert drive(run) == {"t": "success"}


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"n": "many"}, "invalid conf for DAG 'with_params'.*"),
        ({"n": -1}, "invalid conf for DAG 'with_params'.*"),
        ([1, 2], "conf must be a JSON object"),
    ],
)
def test_trigger_conf_is_checked_against_the_params(tenant, conf, message) -> None:
    dag = params_dag(tenant)
    with pytest.raises(Invalid, match=message) as caught:
        trigger(tenant, dag, conf=conf)
    assert caught.value.status_code == 400
    assert not DagRun.objects.filter(dag=dag).exists()


def test_trigger_refuses_duplicates_and_bad_input(tenant) -> None:
    dag = params_dag(tenant)
    trigger(tenant, dag, logical_date=START, run_id="first")
    with pytest.raises(Conflict, match="run_id"):
        trigger(tenant, dag, run_id="first")
    with pytest.raises(Conflict, match="logical date"):
        trigger(tenant, dag, logical_date=START)
    with pytest.raises(Invalid, match="run_id"):
        trigger(tenant, dag, run_id="has spaces/and slashes")
    with pytest.raises(Invalid, match="time zone"):
        trigger(tenant, dag, logical_date=dt.datetime(2024, 1, 1))


def test_trigger_a_paused_dag_queues_a_run_that_waits(tenant) -> None:
    dag = params_dag(tenant)
    pause(tenant, dag)
    run = trigger(tenant, dag)
    loop.start_queued_runs(tenant, NOW)
    run.refresh_from_db()
    assert run.state == DagRunState.QUEUED
    pause(tenant, dag, False)
    loop.start_queued_runs(tenant, NOW)
    run.refresh_from_db()
    assert run.state == DagRunState.RUNNING


def test_trigger_refuses_inactive_dags_and_other_tenants(tenant, other_tenant) -> None:
    dag = params_dag(tenant)
    with pytest.raises(NotFound):
        trigger(other_tenant, dag)
    Dag.objects.filter(pk=dag.pk).update(is_active=False)
    dag.refresh_from_db()
    with pytest.raises(Conflict, match="not in the active version"):
        trigger(tenant, dag)
