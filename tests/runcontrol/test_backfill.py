"""Backfills as Airflow 3's: created by a user, their runs created by the scheduler over time within their
max_active_runs, dates with runs skipped or reprocessed, paused, cancelled and completed."""

from __future__ import annotations

import datetime as dt

import pytest

from scheduler import services
from scheduler.models import Backfill, DagRun
from scheduler.states import DagRunState, RunType
from tests.factories import make_dag_version, make_run
from tests.runcontrol.helpers import ACTOR, at, audit_actions, chain_dag
from tests.scheduler.engine import drive
from tradewind.audit.models import AuditEntry
from tradewind.errors import Conflict, Invalid, NotFound
from tradewind.sdk import DAG, Param
from tradewind.sdk.operators.empty import EmptyOperator

pytestmark = pytest.mark.django_db


def daily(tenant, **kwargs):
    """A daily DAG (Airflow 3's cron schedule: one run per day, logical date = the day at midnight)."""
    return make_dag_version(tenant, chain_dag("daily", schedule="@daily", catchup=False, **kwargs))


def backfill(tenant, version, start=at(1), end=at(5), **kwargs) -> Backfill:
    return services.create_backfill(
        tenant=tenant, actor=ACTOR, dag=version.dag, start=start, end=end, **kwargs
    )


def runs_of(b: Backfill) -> list[DagRun]:
    return list(DagRun.objects.filter(backfill=b).order_by("pk"))


def days(runs: list[DagRun]) -> list[int]:
    return [run.logical_date.day for run in runs]


def finish_all(runs: list[DagRun], outcomes: dict | None = None) -> None:
    for run in runs:
        drive(run, outcomes)


def test_the_scheduler_creates_a_backfills_runs_over_time_within_its_max_active_runs(tenant) -> None:
    version = daily(tenant)
    b = backfill(tenant, version, max_active_runs=2, conf={"source": "backfill"})
    assert [p["logical_date"] for p in b.planned] == [at(d).isoformat() for d in range(1, 6)]
    assert not runs_of(b)  # nothing is created until the scheduler's pass
    assert services.create_backfill_runs(tenant) == 2
    first = runs_of(b)
    assert days(first) == [1, 2]
    assert all(r.run_type == RunType.BACKFILL and r.state == DagRunState.QUEUED for r in first)
    assert first[0].run_id == f"backfill__{at(1).isoformat()}" and first[0].conf == {"source": "backfill"}
    assert first[0].data_interval_start == at(1) and not first[0].external_trigger
    assert services.create_backfill_runs(tenant) == 0  # two are active: wait
    finish_all(first[:1])
    assert services.create_backfill_runs(tenant) == 1
    assert days(runs_of(b)) == [1, 2, 3]
    finish_all(runs_of(b))
    assert services.create_backfill_runs(tenant) == 2
    finish_all(runs_of(b))
    b.refresh_from_db()
    assert b.completed_at is None  # its last runs just finished: the next pass completes it
    assert services.create_backfill_runs(tenant) == 0
    b.refresh_from_db()
    assert b.completed_at is not None and b.next_index == 5 and b.skipped == []
    assert all(r.state == DagRunState.SUCCESS for r in runs_of(b))
    assert audit_actions(tenant).count("backfill.completed") == 1
    assert AuditEntry.objects.filter(action="backfill.created").get().after["runs_planned"] == 5


def test_reverse_runs_the_latest_dates_first(tenant) -> None:
    b = backfill(tenant, daily(tenant), reverse=True, max_active_runs=2)
    services.create_backfill_runs(tenant)
    assert days(runs_of(b)) == [5, 4]


def test_the_range_is_inclusive_and_only_complete_intervals(tenant) -> None:
    version = daily(tenant)
    b = backfill(tenant, version, start=at(2, hour=6), end=at(4))
    assert [p["logical_date"] for p in b.planned] == [at(3).isoformat(), at(4).isoformat()]
    services.cancel_backfill(tenant=tenant, actor=ACTOR, backfill=b)
    now = dt.datetime.now(dt.UTC)
    recent = backfill(tenant, version, start=now - dt.timedelta(days=3), end=now + dt.timedelta(days=3))
    assert len(recent.planned) == 3  # the three last midnights: later ones have not come yet
    assert max(p["end"] for p in recent.planned) < now.isoformat()


def existing_runs(tenant, version):
    """Runs of days 2 (success), 3 (failed) and 4 (running) that the DAG already has."""
    made = {}
    for day, outcome in ((2, None), (3, {"a": {"state": "failed"}}), (4, "running")):
        run = make_run(
            tenant,
            version,
            run_type=RunType.SCHEDULED,
            logical_date=at(day),
            data_interval=(at(day), at(day)),
        )
        if outcome == "running":
            services.schedule_run(run)
        else:
            drive(run, outcome)
        run.refresh_from_db()
        made[day] = run
    assert [made[d].state for d in (2, 3, 4)] == ["success", "failed", "running"]
    return made


@pytest.mark.parametrize(
    ("reprocess", "reprocessed", "skipped"),
    [
        ("none", [], {"2": "already exists", "3": "already exists", "4": "in flight"}),
        ("failed", [3], {"2": "already exists", "4": "in flight"}),
        ("completed", [2, 3], {"4": "in flight"}),
    ],
)
def test_reprocess_behaviour_for_dates_that_have_runs(tenant, reprocess, reprocessed, skipped) -> None:
    version = daily(tenant)
    made = existing_runs(tenant, version)
    b = backfill(tenant, version, reprocess=reprocess)
    services.create_backfill_runs(tenant)
    b.refresh_from_db()
    assert {s["logical_date"][8:10].lstrip("0"): s["reason"] for s in b.skipped} == skipped
    assert sorted(days(runs_of(b))) == sorted([1, 5, *reprocessed])
    for day in reprocessed:
        run = DagRun.objects.get(pk=made[day].pk)  # the existing run, cleared and now the backfill's
        assert run.backfill_id == b.pk and run.run_type == RunType.BACKFILL
        assert run.state == DagRunState.QUEUED and run.run_id == made[day].run_id
        assert set(run.task_instances.values_list("state", flat=True)) == {"none"}
    assert DagRun.objects.get(pk=made[4].pk).state == DagRunState.RUNNING  # never touched


def test_a_paused_backfill_creates_no_runs_until_unpaused(tenant) -> None:
    b = backfill(tenant, daily(tenant), max_active_runs=1)
    services.create_backfill_runs(tenant)
    b = services.set_backfill_paused(tenant=tenant, actor=ACTOR, backfill=b, is_paused=True)
    finish_all(runs_of(b))
    assert services.create_backfill_runs(tenant) == 0
    b.refresh_from_db()
    assert b.completed_at is None and b.next_index == 1
    services.set_backfill_paused(tenant=tenant, actor=ACTOR, backfill=b, is_paused=False)
    assert services.create_backfill_runs(tenant) == 1
    assert audit_actions(tenant).count("backfill.paused") == 1
    assert audit_actions(tenant).count("backfill.unpaused") == 1


def test_a_paused_dag_gets_no_backfill_runs(tenant) -> None:
    version = daily(tenant)
    b = backfill(tenant, version)
    services.set_paused(tenant=tenant, actor=ACTOR, dag=version.dag, is_paused=True)
    assert services.create_backfill_runs(tenant) == 0 and not runs_of(b)


def test_cancel_fails_queued_runs_lets_running_ones_finish_and_completes_it(tenant) -> None:
    version = daily(tenant)
    b = backfill(tenant, version, max_active_runs=2)
    services.create_backfill_runs(tenant)
    running, queued = runs_of(b)
    services.schedule_run(running)
    assert running.state == DagRunState.RUNNING
    b = services.cancel_backfill(tenant=tenant, actor=ACTOR, backfill=b)
    assert b.completed_at is not None and b.is_paused
    queued.refresh_from_db()
    assert queued.state == DagRunState.FAILED and "cancelled" in queued.failure_reason
    assert drive(running)["d"] == "success"
    assert services.create_backfill_runs(tenant) == 0 and len(runs_of(b)) == 2
    with pytest.raises(Conflict, match="already completed"):
        services.cancel_backfill(tenant=tenant, actor=ACTOR, backfill=b)
    with pytest.raises(Conflict):
        services.set_backfill_paused(tenant=tenant, actor=ACTOR, backfill=b, is_paused=False)
    entry = AuditEntry.objects.filter(action="backfill.cancelled").get()
    assert entry.detail["failed_runs"] == [queued.run_id] and entry.detail["not_started"] == 3
    backfill(tenant, version, start=at(10), end=at(11))  # a cancelled backfill no longer blocks a new one


def test_only_one_running_backfill_per_dag(tenant, other_tenant) -> None:
    version = daily(tenant)
    backfill(tenant, version)
    with pytest.raises(Conflict, match="already has a backfill"):
        backfill(tenant, version, start=at(10), end=at(12))
    with pytest.raises(NotFound):
        services.create_backfill(tenant=other_tenant, actor=ACTOR, dag=version.dag, start=at(1), end=at(2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": at(5), "end": at(1)}, "must not be after"),
        ({"start": dt.datetime(2024, 1, 1), "end": at(2)}, "time zone"),
        ({"reprocess": "sometimes"}, "reprocess must be one of"),
        ({"max_active_runs": 0}, "at least 1"),
        ({"start": at(1, hour=6), "end": at(1, hour=7)}, "no complete data interval"),
        ({"conf": {"n": "x"}}, "invalid conf"),
    ],
)
def test_create_backfill_refuses_bad_input(tenant, kwargs, message) -> None:
    with DAG(
        "daily", schedule="@daily", start_date=at(1), catchup=False, params={"n": Param(1, type="integer")}
    ) as dag:
        EmptyOperator(task_id="t")
    version = make_dag_version(tenant, dag)
    with pytest.raises(Invalid, match=message):
        backfill(tenant, version, **kwargs)
    assert not Backfill.objects.exists()


def test_future_dates_and_unscheduled_dags_cannot_be_backfilled(tenant) -> None:
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    with pytest.raises(Invalid, match="future"):
        backfill(tenant, daily(tenant), start=future, end=future + dt.timedelta(days=1))
    manual = make_dag_version(tenant, chain_dag("manual"))
    with pytest.raises(Invalid, match="no time-based schedule"):
        backfill(tenant, manual)


def test_depends_on_past_needs_forward_order_and_reprocessing(tenant) -> None:
    with DAG("dop", schedule="@daily", start_date=at(1), catchup=False) as dag:
        EmptyOperator(task_id="t", depends_on_past=True)
    version = make_dag_version(tenant, dag)
    with pytest.raises(Invalid, match="reverse"):
        backfill(tenant, version, reverse=True, reprocess="failed")
    with pytest.raises(Invalid, match="reprocess"):
        backfill(tenant, version)
    assert backfill(tenant, version, reprocess="completed").reprocess_behavior == "completed"
