"""TriggerDagRunOperator(reset_dag_run=True) on a run that already exists clears that run, as Airflow does: the
same row with its tries' history and its conf, every task instance back to none, the run back to queued."""

from __future__ import annotations

from datetime import datetime

import pytest

from scheduler import services
from scheduler.models import DagRun, TaskInstance, TaskInstanceHistory
from scheduler.states import DagRunState, RunType, TIState
from tests.factories import make_dag_version
from tests.runner.conftest import ACTOR, start
from tests.runner.test_rpc import handler_for
from tradewind.audit.models import AuditEntry
from tradewind.sdk import DAG
from tradewind.sdk.operators.empty import EmptyOperator

pytestmark = pytest.mark.django_db(transaction=True)


def finished_child(tenant) -> DagRun:
    """A run `from_task` of DAG `child` whose two tasks succeeded, so the run did too."""
    with DAG("child", schedule=None, start_date=datetime(2024, 1, 1)) as child:
        EmptyOperator(task_id="extract") >> EmptyOperator(task_id="load")
    version = make_dag_version(tenant, child)
    run = services.create_dag_run(
        tenant=tenant,
        dag=version.dag,
        actor=ACTOR,
        run_type=RunType.MANUAL,
        logical_date=datetime.fromisoformat("2024-03-01T00:00:00+00:00"),
        data_interval=None,
        conf={"n": 1},
        run_id="from_task",
    )
    for task_id in ("extract", "load"):
        services.schedule_run(run)
        services.finish_task_instance(start(run, task_id), {"state": "success"})
    services.schedule_run(run)
    run.refresh_from_db()
    assert run.state == DagRunState.SUCCESS
    return run


@pytest.mark.parametrize("by", ["run_id", "logical_date"])
def test_reset_dag_run_clears_the_existing_run_instead_of_replacing_it(tenant, by):
    child = finished_child(tenant)
    handler = handler_for(tenant)
    args = {"dag_id": "child", "conf": {"n": 2}, "reset_dag_run": True, "run_id": None, "logical_date": None}
    args[by] = "from_task" if by == "run_id" else child.logical_date.isoformat()

    result = handler("trigger_dag_run", args)

    assert result["run_id"] == "from_task" and result["state"] == DagRunState.QUEUED
    assert result["already_exists"] is True
    run = DagRun.objects.get(tenant=tenant, dag__dag_id="child")  # the one run, kept
    assert run.pk == child.pk and run.state == DagRunState.QUEUED
    assert run.conf == {"n": 1}  # Airflow never changes a run's conf, reset or not
    tis = TaskInstance.objects.filter(dag_run=run).order_by("task_id")
    assert [(ti.task_id, ti.state, ti.try_number) for ti in tis] == [
        ("extract", TIState.NONE, 1),
        ("load", TIState.NONE, 1),
    ]
    history = TaskInstanceHistory.objects.filter(task_instance__dag_run=run).order_by(
        "task_instance__task_id"
    )
    assert [(h.task_instance.task_id, h.try_number, h.state) for h in history] == [
        ("extract", 1, TIState.SUCCESS),
        ("load", 1, TIState.SUCCESS),
    ]
    cleared = AuditEntry.objects.filter(tenant=tenant, action="run.cleared").get()
    assert cleared.detail["run_id"] == "from_task" and cleared.detail["count"] == 2
    assert cleared.actor_label.startswith("task producer.first of run ")

    # The cleared run runs again: its first task is scheduled on the next pass, its second try starts.
    services.schedule_run(run)
    again = start(run, "extract")
    assert again.try_number == 2
