"""Runs created from timetables by the scheduler loop (`create_due_runs`) at a fixed moment: cron strings,
presets, timedelta, DST, @once, None, catchup and max_active_runs."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest

from scheduler import loop
from scheduler.models import Dag, DagRun
from scheduler.states import DagRunState, RunType
from tests.factories import make_dag_version
from tradewind.sdk import DAG
from tradewind.sdk.dag import Airflow2DAG
from tradewind.sdk.operators.empty import EmptyOperator

pytestmark = pytest.mark.django_db

UTC = dt.UTC
JAN_1 = pendulum.datetime(2024, 1, 1, tz="UTC")


def deploy(tenant, dag_id: str, schedule, start=JAN_1, flavour=Airflow2DAG, **kwargs) -> Dag:
    """A DAG with this schedule (an Airflow 2 DAG unless `flavour` is the native, Airflow 3 DAG), active and
    unpaused, its next run worked out as an activation does."""
    with flavour(dag_id, schedule=schedule, start_date=start, **kwargs) as sdk_dag:
        EmptyOperator(task_id="work")
    version = make_dag_version(tenant, sdk_dag)
    dag = version.dag
    loop.refresh_next_dagrun(dag, version.serialized)
    dag.refresh_from_db()
    return dag


def runs_of(dag: Dag) -> list[tuple[dt.datetime, dt.datetime, dt.datetime]]:
    """(logical date, interval start, interval end) of the DAG's runs, oldest first."""
    return list(
        DagRun.objects.filter(dag=dag)
        .order_by("logical_date")
        .values_list("logical_date", "data_interval_start", "data_interval_end")
    )


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def exact(*args: int) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """An Airflow 3 trigger run: its logical date is its run time, its data interval that one moment."""
    moment = at(*args)
    return (moment, moment, moment)


def test_an_airflow2_daily_cron_with_catchup_creates_every_missed_interval(tenant):
    dag = deploy(tenant, "daily", "0 0 * * *", catchup=True)
    assert dag.next_dagrun_create_after == at(2024, 1, 2)
    assert loop.create_due_runs(tenant, at(2024, 1, 4, 5)) == 3
    assert runs_of(dag) == [
        (at(2024, 1, 1), at(2024, 1, 1), at(2024, 1, 2)),
        (at(2024, 1, 2), at(2024, 1, 2), at(2024, 1, 3)),
        (at(2024, 1, 3), at(2024, 1, 3), at(2024, 1, 4)),
    ]
    assert set(DagRun.objects.filter(dag=dag).values_list("run_type", "state")) == {
        (RunType.SCHEDULED, DagRunState.QUEUED)
    }
    dag.refresh_from_db()
    assert dag.next_dagrun_create_after == at(2024, 1, 5)
    assert loop.create_due_runs(tenant, at(2024, 1, 4, 23)) == 0  # nothing new until the next interval ends
    assert loop.create_due_runs(tenant, at(2024, 1, 5)) == 1


def test_an_airflow3_cron_runs_at_each_cron_time(tenant):
    dag = deploy(tenant, "daily3", "0 0 * * *", flavour=DAG, catchup=True)
    assert dag.next_dagrun_create_after == at(2024, 1, 1)
    assert loop.create_due_runs(tenant, at(2024, 1, 4, 5)) == 4
    assert runs_of(dag) == [exact(2024, 1, d) for d in (1, 2, 3, 4)]


@pytest.mark.parametrize(("flavour", "latest_offset"), [(Airflow2DAG, -1), (DAG, 0)])
def test_without_catchup_only_the_latest_interval_runs(tenant, flavour, latest_offset):
    # Airflow skips to the latest interval by the wall clock, so this one is relative to today.
    today = dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = pendulum.instance(today - dt.timedelta(days=5))
    dag = deploy(tenant, "latest", "@daily", start=start, flavour=flavour, catchup=False)
    assert loop.create_due_runs(tenant, dt.datetime.now(UTC)) == 1
    assert [row[0] for row in runs_of(dag)] == [today + dt.timedelta(days=latest_offset)]


def test_catchup_stops_at_max_active_runs_and_resumes_when_runs_finish(tenant):
    dag = deploy(tenant, "bounded", "@daily", catchup=True, max_active_runs=2)
    assert loop.create_due_runs(tenant, at(2024, 1, 6)) == 2
    assert loop.create_due_runs(tenant, at(2024, 1, 6)) == 0
    DagRun.objects.filter(dag=dag).update(state=DagRunState.SUCCESS)
    assert loop.create_due_runs(tenant, at(2024, 1, 6)) == 2
    assert [row[0] for row in runs_of(dag)] == [at(2024, 1, d) for d in (1, 2, 3, 4)]


@pytest.mark.parametrize(
    ("preset", "start", "now", "expected"),
    [
        (
            "@hourly",
            at(2024, 1, 4, 3),
            at(2024, 1, 4, 5, 30),
            [
                (at(2024, 1, 4, 3), at(2024, 1, 4, 3), at(2024, 1, 4, 4)),
                (at(2024, 1, 4, 4), at(2024, 1, 4, 4), at(2024, 1, 4, 5)),
            ],
        ),
        ("@weekly", at(2024, 1, 7), at(2024, 1, 16), [(at(2024, 1, 7), at(2024, 1, 7), at(2024, 1, 14))]),
        ("@monthly", at(2024, 2, 1), at(2024, 3, 15), [(at(2024, 2, 1), at(2024, 2, 1), at(2024, 3, 1))]),
        ("@yearly", at(2024, 1, 1), at(2025, 6, 1), [(at(2024, 1, 1), at(2024, 1, 1), at(2025, 1, 1))]),
    ],
)
def test_presets(tenant, preset, start, now, expected):
    dag = deploy(tenant, "preset", preset, start=pendulum.instance(start), catchup=True)
    loop.create_due_runs(tenant, now)
    assert runs_of(dag) == expected


def test_a_timedelta_schedule_runs_every_interval_since_the_start(tenant):
    six_hours = dt.timedelta(hours=6)
    dag = deploy(tenant, "every_6h", six_hours, catchup=True)
    assert loop.create_due_runs(tenant, at(2024, 1, 2, 1)) == 4
    assert runs_of(dag) == [
        (at(2024, 1, 1, h), at(2024, 1, 1, h), at(2024, 1, 1, h) + six_hours) for h in (0, 6, 12, 18)
    ]
    native = deploy(tenant, "every_6h_native", six_hours, flavour=DAG, catchup=True)
    assert loop.create_due_runs(tenant, at(2024, 1, 2, 1)) == 5
    assert [row[0] for row in runs_of(native)] == [at(2024, 1, 1, h) for h in (0, 6, 12, 18)] + [
        at(2024, 1, 2)
    ]


def test_a_cron_in_a_local_timezone_follows_daylight_saving_time(tenant):
    # 09:00 in New York is 14:00 UTC before 10 March 2024 and 13:00 UTC after.
    start = pendulum.datetime(2024, 3, 8, tz="America/New_York")
    dag = deploy(tenant, "new_york", "0 9 * * *", start=start, catchup=True)
    assert loop.create_due_runs(tenant, at(2024, 3, 12, 13, 30)) == 4
    assert runs_of(dag) == [
        (at(2024, 3, 8, 14), at(2024, 3, 8, 14), at(2024, 3, 9, 14)),
        (at(2024, 3, 9, 14), at(2024, 3, 9, 14), at(2024, 3, 10, 13)),  # a 23-hour day
        (at(2024, 3, 10, 13), at(2024, 3, 10, 13), at(2024, 3, 11, 13)),
        (at(2024, 3, 11, 13), at(2024, 3, 11, 13), at(2024, 3, 12, 13)),
    ]
    native = deploy(tenant, "new_york_native", "0 9 * * *", start=start, flavour=DAG, catchup=True)
    assert loop.create_due_runs(tenant, at(2024, 3, 12, 13, 30)) == 5
    assert runs_of(native) == [exact(2024, 3, 8, 14), exact(2024, 3, 9, 14)] + [
        exact(2024, 3, d, 13) for d in (10, 11, 12)
    ]


def test_once_runs_once(tenant):
    dag = deploy(tenant, "once", "@once", flavour=DAG)
    assert loop.create_due_runs(tenant, at(2024, 2, 1)) == 1
    DagRun.objects.filter(dag=dag).update(state=DagRunState.SUCCESS)
    assert loop.create_due_runs(tenant, at(2025, 2, 1)) == 0
    assert len(runs_of(dag)) == 1
    dag.refresh_from_db()
    assert dag.next_dagrun_create_after is None


def test_no_schedule_means_manual_runs_only(tenant):
    dag = deploy(tenant, "manual", None, flavour=DAG)
    assert dag.next_dagrun_create_after is None
    assert loop.create_due_runs(tenant, at(2030, 1, 1)) == 0
    assert not DagRun.objects.filter(dag=dag).exists()


def test_a_paused_dag_gets_no_runs_until_unpaused(tenant):
    dag = deploy(tenant, "paused", "@daily", catchup=True)
    Dag.objects.filter(pk=dag.pk).update(is_paused=True)
    assert loop.create_due_runs(tenant, at(2024, 1, 3)) == 0
    Dag.objects.filter(pk=dag.pk).update(is_paused=False)
    assert loop.create_due_runs(tenant, at(2024, 1, 3)) == 2


def test_an_interval_that_already_has_a_manual_run_is_passed_over(tenant):
    from scheduler import services
    from tradewind.accounts.actors import Actor

    dag = deploy(tenant, "taken", "@daily", catchup=True)
    services.create_dag_run(
        tenant=tenant,
        dag=dag,
        actor=Actor.system("tests"),
        run_type=RunType.MANUAL,
        logical_date=at(2024, 1, 2),
        data_interval=None,
    )
    assert loop.create_due_runs(tenant, at(2024, 1, 4)) == 2
    scheduled = DagRun.objects.filter(dag=dag, run_type=RunType.SCHEDULED).order_by("logical_date")
    assert [run.logical_date for run in scheduled] == [at(2024, 1, 1), at(2024, 1, 3)]
