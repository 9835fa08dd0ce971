"""Clearing task instances and runs, with Airflow's semantics: which task instances a clear touches, the
history of ended tries, renewed retries, the run going back to queued, mapped tasks expanding again, and
running tries told to stop."""

from __future__ import annotations

import pytest

from scheduler import events, services
from scheduler.models import TaskInstance, XCom
from scheduler.states import DagRunState, TIState
from tests.factories import make_run
from tests.runcontrol.helpers import (
    ACTOR,
    advance,
    audit_actions,
    chain_dag,
    history,
    mapped_dag,
    start_only,
    ti,
)
from tests.scheduler.engine import START, drive, push_xcom, states_of
from tradewind.audit.models import AuditEntry
from tradewind.errors import Invalid, NotFound
from tradewind.sdk import DAG
from tradewind.sdk.operators.empty import EmptyOperator

pytestmark = pytest.mark.django_db


def finished_chain(tenant, outcomes=None, **kwargs):
    run = make_run(tenant, chain_dag(**kwargs))
    drive(run, outcomes)
    run.refresh_from_db()
    return run


def clear(tenant, run, **kwargs):
    return services.clear_task_instances(tenant=tenant, actor=ACTOR, run=run, **kwargs)


def test_clear_one_task_resets_only_it_and_requeues_the_finished_run(tenant) -> None:
    run = finished_chain(tenant)
    assert run.state == DagRunState.SUCCESS
    cleared = clear(tenant, run, task_ids=["b"])
    assert [(t.task_id, t.state) for t in cleared] == [("b", TIState.NONE)]
    run.refresh_from_db()
    assert run.state == DagRunState.QUEUED and run.start_date is None and run.end_date is None
    assert states_of(run) == {"a": "success", "b": "none", "c": "success", "d": "success"}
    assert history(run, "b") == [(1, "success")]
    b = ti(run, "b")
    assert b.try_number == 1 and b.start_date is None and b.end_date is None and b.max_tries == 1
    # The scheduler runs it again as try 2, and the run succeeds again.
    assert drive(run)["b"] == "success"
    assert ti(run, "b").try_number == 2
    run.refresh_from_db()
    assert run.state == DagRunState.SUCCESS


def test_clear_with_downstream_and_upstream_takes_their_relatives(tenant) -> None:
    run = finished_chain(tenant)
    assert {t.task_id for t in clear(tenant, run, task_ids=["b"], downstream=True)} == {"b", "c", "d"}
    drive(run)
    assert {t.task_id for t in clear(tenant, run, task_ids=["c"], upstream=True)} == {"a", "b", "c"}
    assert states_of(run) == {"a": "none", "b": "none", "c": "none", "d": "success"}


def test_only_failed_clears_failed_and_upstream_failed_ones(tenant) -> None:
    run = finished_chain(tenant, {"b": {"state": "failed", "error": "boom"}})
    assert run.state == DagRunState.FAILED
    assert states_of(run) == {"a": "success", "b": "failed", "c": "upstream_failed", "d": "upstream_failed"}
    cleared = services.clear_run(tenant=tenant, actor=ACTOR, run=run, only_failed=True)
    assert sorted(t.task_id for t in cleared) == ["b", "c", "d"]
    assert states_of(run)["a"] == "success"
    assert history(run, "b") == [(1, "failed")]
    assert history(run, "c") == []  # never ran: no try to keep
    assert drive(run) == {"a": "success", "b": "success", "c": "success", "d": "success"}
    assert audit_actions(tenant).count("run.cleared") == 1


def test_dry_run_changes_nothing(tenant) -> None:
    run = finished_chain(tenant)
    listed = clear(tenant, run, task_ids=["c"], downstream=True, dry_run=True)
    assert [(t.task_id, t.state) for t in listed] == [("c", "success"), ("d", "success")]
    run.refresh_from_db()
    assert run.state == DagRunState.SUCCESS and states_of(run)["c"] == "success"
    assert "task.cleared" not in audit_actions(tenant)


def test_clear_renews_retries(tenant) -> None:
    run = finished_chain(tenant, {"a": {"state": "failed"}}, retries=0)
    assert ti(run, "a").max_tries == 0 and ti(run, "a").state == "failed"
    clear(tenant, run, task_ids=["a"])
    assert ti(run, "a").max_tries == 1  # try_number 1 + retries 0: one more try
    assert drive(run, {"a": {"state": "failed"}})["a"] == "failed"  # no retry beyond it
    assert history(run, "a") == [(1, "failed")]


def test_clearing_a_work_task_clears_its_setup_and_teardown(tenant) -> None:
    with DAG("st", schedule=None, start_date=START) as dag:
        setup = EmptyOperator(task_id="setup").as_setup()
        work = EmptyOperator(task_id="work")
        EmptyOperator(task_id="other")
        td = EmptyOperator(task_id="td").as_teardown(setups=setup)
        setup >> work >> td
    run = make_run(tenant, dag)
    drive(run)
    assert {t.task_id for t in clear(tenant, run, task_ids=["work"])} == {"setup", "work", "td"}
    assert drive(run)["td"] == "success"


def test_unknown_task_and_other_tenant_are_refused(tenant, other_tenant) -> None:
    run = finished_chain(tenant)
    with pytest.raises(Invalid, match="no task 'zzz'"):
        clear(tenant, run, task_ids=["zzz"])
    with pytest.raises(NotFound):
        services.clear_task_instances(tenant=other_tenant, actor=ACTOR, run=run)


def test_clear_is_audited_and_publishes_events_on_commit(tenant, django_capture_on_commit_callbacks) -> None:
    run = finished_chain(tenant)
    seen: list[dict] = []
    unsubscribe = events.subscribe(seen.append)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            clear(tenant, run, task_ids=["d"])
            assert not seen  # only once committed
    finally:
        unsubscribe()
    entry = AuditEntry.objects.filter(tenant_id=tenant.pk, action="task.cleared").get()
    assert entry.detail["task_instances"] == ["d"] and entry.detail["run_id"] == run.run_id
    assert {(e["task_id"], e["state"]) for e in seen} == {("d", "none"), (None, "queued")}


# --- mapped tasks -----------------------------------------------------------------------------------------


def mapped_run(tenant, values=(1, 2, 3)):
    run = make_run(tenant, mapped_dag())
    states = drive(run, {"make": {"state": "success", "xcom": list(values)}})
    assert states["total"] == "success"
    return run


def test_clearing_map_indexes_keeps_the_expansion(tenant) -> None:
    run = mapped_run(tenant)
    cleared = clear(tenant, run, task_ids=["double"], map_indexes=[1])
    assert [(t.task_id, t.map_index) for t in cleared] == [("double", 1)]
    assert states_of(run)["double[1]"] == "none" and states_of(run)["double[0]"] == "success"
    states = drive(run)
    assert states["double[1]"] == "success" and ti(run, "double", 1).try_number == 2


def test_a_mapped_task_cleared_alone_runs_its_map_indexes_again(tenant) -> None:
    run = mapped_run(tenant)
    clear(tenant, run, task_ids=["double"], downstream=True)
    assert states_of(run) == {
        "make": "success",
        "double[0]": "none",
        "double[1]": "none",
        "double[2]": "none",
        "total": "none",
    }
    assert history(run, "double") == [(1, "success"), (1, "success"), (1, "success")]
    assert drive(run)["total"] == "success"


def test_a_mapped_task_expands_again_when_its_input_is_cleared(tenant) -> None:
    run = mapped_run(tenant)
    assert XCom.objects.filter(dag_run=run, task_id="double").count() == 0  # (hand-run tasks push nothing)
    push_xcom(run, "double", 2, map_index=2)
    clear(tenant, run, task_ids=["make"], downstream=True)
    assert states_of(run) == {"make": "none", "double": "none", "total": "none"}  # back to its placeholder
    assert not XCom.objects.filter(dag_run=run, task_id="double").exists()
    states = drive(run, {"make": {"state": "success", "xcom": [10, 20, 30, 40, 50]}})
    assert sorted(k for k in states if k.startswith("double")) == [f"double[{i}]" for i in range(5)]
    assert states["total"] == "success"
    run.refresh_from_db()
    assert run.state == DagRunState.SUCCESS


def test_a_mapped_task_can_shrink_when_expanded_again(tenant) -> None:
    run = mapped_run(tenant, values=(1, 2, 3, 4))
    clear(tenant, run, task_ids=["make"], downstream=True)
    states = drive(run, {"make": {"state": "success", "xcom": [7]}})
    assert states == {"make": "success", "double[0]": "success", "total": "success"}


# --- running task instances ---------------------------------------------------------------------------------


def test_a_running_task_is_told_to_stop_and_runs_again_once_its_try_ended(tenant) -> None:
    run = make_run(tenant, chain_dag())
    advance(run, only={"a"})
    running = start_only(run, "b")
    (cleared,) = clear(tenant, run, task_ids=["b"])
    assert cleared.state == TIState.RESTARTING and cleared.try_number == 1
    run.refresh_from_db()
    assert run.state == DagRunState.RUNNING  # an active run keeps its state
    # Nothing schedules a restarting task instance, and the run is not deadlocked by it.
    assert services.schedule_run(run) == []
    assert run.state == DagRunState.RUNNING
    # The runner (its heartbeat saw the change and killed the child) reports the try's end.
    services.finish_task_instance(
        running, {"state": "failed", "error": "the task was terminated by the platform"}
    )
    b = ti(run, "b")
    assert b.state == TIState.NONE and b.try_number == 1 and b.pid is None
    assert history(run, "b") == [(1, "failed")]
    # It runs again as a new try.
    states = drive(run)
    assert states["b"] == "success" and ti(run, "b").try_number == 2
    run.refresh_from_db()
    assert run.state == DagRunState.SUCCESS


def test_a_restarting_try_that_succeeded_meanwhile_still_runs_again(tenant) -> None:
    run = make_run(tenant, chain_dag())
    running = start_only(run, "a")
    clear(tenant, run, task_ids=["a"])
    services.finish_task_instance(running, {"state": "success"})
    assert ti(run, "a").state == TIState.NONE
    assert history(run, "a") == [(1, "success")]


def test_a_zombie_restarting_try_is_recovered_like_a_running_one(tenant) -> None:
    run = make_run(tenant, chain_dag())
    start_only(run, "a")
    clear(tenant, run, task_ids=["a"])
    # The scheduler's lost-heartbeat check hands the task instance it read (restarting) to the same door.
    zombie = ti(run, "a")
    assert zombie.state == TIState.RESTARTING
    services.finish_task_instance(zombie, {"state": "failed", "error": "the worker stopped heartbeating"})
    assert ti(run, "a").state == TIState.NONE and history(run, "a") == [(1, "failed")]


def test_a_queued_task_is_cleared_without_ending_a_try(tenant) -> None:
    run = make_run(tenant, chain_dag())
    (queued,) = services.queue_task_instances(services.schedule_run(run))
    clear(tenant, run, task_ids=["a"])
    assert ti(run, "a").state == TIState.NONE and history(run, "a") == []
    # The message already sent for the queued try does not start it any more.
    assert (
        services.start_task_instance(
            tenant_id=tenant.pk, ti_id=queued.pk, try_number=queued.try_number, hostname="h", pid=None
        )
        is None
    )
    assert drive(run)["a"] == "success"
    assert TaskInstance.objects.get(pk=queued.pk).try_number == 1  # the try that never ran is reused
