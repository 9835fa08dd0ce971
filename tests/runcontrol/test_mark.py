"""Marking task instances and runs (Airflow's "mark success/failed/skipped" and "mark run as"), and
deleting runs."""

from __future__ import annotations

import pytest

from scheduler import services
from scheduler.models import DagRun, TaskInstance, TaskInstanceHistory
from scheduler.states import DagRunState, TIState
from tests.factories import make_run
from tests.runcontrol.helpers import ACTOR, advance, audit_actions, chain_dag, start_only, ti
from tests.scheduler.engine import START, drive, states_of
from tradewind.audit.models import AuditEntry
from tradewind.errors import Invalid, NotFound
from tradewind.sdk import DAG
from tradewind.sdk.operators.empty import EmptyOperator

pytestmark = pytest.mark.django_db


def mark(tenant, instance, state, **kwargs):
    return services.set_task_instance_state(tenant=tenant, actor=ACTOR, ti=instance, state=state, **kwargs)


def test_mark_success_lets_a_failed_run_resume_downstream(tenant) -> None:
    run = make_run(tenant, chain_dag())
    drive(run, {"b": {"state": "failed"}})
    run.refresh_from_db()
    assert run.state == DagRunState.FAILED
    changed = mark(tenant, ti(run, "b"), "success")
    assert [(t.task_id, t.state) for t in changed] == [("b", "success")]
    # Airflow clears the failed / upstream_failed task instances downstream, so the run goes on.
    assert states_of(run) == {"a": "success", "b": "success", "c": "none", "d": "none"}
    run.refresh_from_db()
    assert run.state == DagRunState.QUEUED
    assert drive(run)["d"] == "success"
    run.refresh_from_db()
    assert run.state == DagRunState.SUCCESS
    entry = AuditEntry.objects.filter(tenant_id=tenant.pk, action="task.marked").get()
    assert entry.detail["task_instances"] == ["b"] and entry.detail["cleared"] == ["c", "d"]


def test_mark_success_with_downstream_marks_every_downstream_instance(tenant) -> None:
    run = make_run(tenant, chain_dag())
    services.schedule_run(run)
    changed = mark(tenant, ti(run, "b"), "success", downstream=True)
    assert sorted(t.task_id for t in changed) == ["b", "c", "d"]
    assert states_of(run) == {"a": "scheduled", "b": "success", "c": "success", "d": "success"}
    assert all(t.end_date is not None for t in changed)
    assert drive(run)["a"] == "success"
    run.refresh_from_db()
    assert run.state == DagRunState.SUCCESS


def test_mark_failed_with_upstream(tenant) -> None:
    run = make_run(tenant, chain_dag())
    changed = mark(tenant, ti(run, "c"), "failed", upstream=True)
    assert sorted(t.task_id for t in changed) == ["a", "b", "c"]
    assert drive(run) == {"a": "failed", "b": "failed", "c": "failed", "d": "upstream_failed"}


def test_mark_skipped_a_running_task_instance(tenant) -> None:
    run = make_run(tenant, chain_dag())
    running = start_only(run, "a")
    mark(tenant, ti(run, "a"), "skipped")
    assert ti(run, "a").state == TIState.SKIPPED
    # The runner's late report of the killed try changes nothing.
    services.finish_task_instance(running, {"state": "failed", "error": "terminated"})
    assert ti(run, "a").state == TIState.SKIPPED and not TaskInstanceHistory.objects.exists()


def test_mark_refuses_other_states_and_other_tenants(tenant, other_tenant) -> None:
    run = make_run(tenant, chain_dag())
    with pytest.raises(Invalid, match="success, failed or skipped"):
        mark(tenant, ti(run, "a"), "running")
    with pytest.raises(NotFound):
        mark(other_tenant, ti(run, "a"), "success")


# --- run state ----------------------------------------------------------------------------------------------


def set_state(tenant, run, state):
    return services.set_run_state(tenant=tenant, actor=ACTOR, run=run, state=state)


def test_mark_run_success_marks_every_task_success(tenant) -> None:
    run = make_run(tenant, chain_dag())
    drive(run, {"b": {"state": "failed"}})
    run = set_state(tenant, DagRun.objects.get(pk=run.pk), "success")
    assert run.state == DagRunState.SUCCESS and run.end_date is not None
    assert set(states_of(run).values()) == {"success"}
    assert audit_actions(tenant)[-1] == "run.marked"


def test_mark_run_failed_fails_running_and_skips_pending_tasks(tenant) -> None:
    run = make_run(tenant, chain_dag())
    running = start_only(run, "a")
    run = set_state(tenant, run, "failed")
    assert run.state == DagRunState.FAILED and "marked failed" in run.failure_reason
    assert states_of(run) == {"a": "failed", "b": "skipped", "c": "skipped", "d": "skipped"}
    services.finish_task_instance(running, {"state": "success"})  # the killed try's report is ignored
    assert ti(run, "a").state == TIState.FAILED
    # The running one keeps its start; those that never started start as they end.
    assert ti(run, "a").start_date == running.start_date and ti(run, "a").end_date > running.start_date
    assert all(ti(run, t).start_date == ti(run, t).end_date is not None for t in "bcd")


def test_mark_run_success_lets_unfinished_teardowns_run_first(tenant) -> None:
    with DAG("td", schedule=None, start_date=START) as dag:
        setup = EmptyOperator(task_id="setup").as_setup()
        work = EmptyOperator(task_id="work")
        td = EmptyOperator(task_id="td").as_teardown(setups=setup)
        setup >> work >> td
    run = make_run(tenant, dag)
    run = set_state(tenant, run, "success")
    assert run.state == DagRunState.QUEUED  # not finished: its teardown has not run yet
    assert states_of(run) == {"setup": "success", "work": "success", "td": "none"}
    assert drive(run)["td"] == "success"
    run.refresh_from_db()
    assert run.state == DagRunState.SUCCESS


def test_mark_run_queued_and_back(tenant) -> None:
    run = make_run(tenant, chain_dag())
    drive(run)
    run.refresh_from_db()
    run = set_state(tenant, run, "queued")
    assert run.state == DagRunState.QUEUED and run.end_date is None
    assert set(states_of(run).values()) == {"success"}  # task instances keep their states
    services.schedule_run(run)
    assert run.state == DagRunState.SUCCESS
    assert set_state(tenant, run, "success").state == DagRunState.SUCCESS  # already: nothing to do
    with pytest.raises(Invalid):
        set_state(tenant, run, "running")


# --- delete ---------------------------------------------------------------------------------------------


def test_delete_run_removes_it_with_its_task_instances(tenant, other_tenant) -> None:
    run = make_run(tenant, chain_dag())
    advance(run)
    with pytest.raises(NotFound):
        services.delete_run(tenant=other_tenant, actor=ACTOR, run=run)
    services.delete_run(tenant=tenant, actor=ACTOR, run=run)
    assert not DagRun.objects.filter(pk=run.pk).exists()
    assert not TaskInstance.objects.filter(dag_run_id=run.pk).exists()
    entry = AuditEntry.objects.filter(tenant_id=tenant.pk, action="run.deleted").get()
    assert entry.before["run_id"] == run.run_id


def test_a_running_try_of_a_deleted_run_finishes_quietly(tenant) -> None:
    run = make_run(tenant, chain_dag())
    running = start_only(run, "a")
    services.delete_run(tenant=tenant, actor=ACTOR, run=run)
    assert services.finish_task_instance(running, {"state": "success"}) is running
