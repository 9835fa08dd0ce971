"""Timetable computations (cron, presets, deltas, DST, @once, catchup) and their JSON round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dateutil.relativedelta import relativedelta

from tradewind.sdk import DAG, Airflow2DAG, Asset
from tradewind.sdk.exceptions import AirflowTimetableInvalid
from tradewind.sdk.timetables import (
    CRON_PRESETS,
    AssetOrTimeSchedule,
    ContinuousTimetable,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DataInterval,
    DeltaDataIntervalTimetable,
    DeltaTriggerTimetable,
    EventsTimetable,
    MultipleCronTriggerTimetable,
    NullTimetable,
    OnceTimetable,
    TimeRestriction,
    get_timezone,
    restriction_from_serialized,
    timetable_from_serialized,
)

UTC = UTC
BERLIN = get_timezone("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def runs(timetable, earliest, count, *, catchup=True, latest=None):
    """The data intervals of the first `count` automated runs."""
    restriction = TimeRestriction(earliest=earliest, latest=latest, catchup=catchup)
    found, last = [], None
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None:
            break
        found.append((info.data_interval.start, info.data_interval.end, info.run_after))
        last = info.data_interval
    return found


def test_daily_data_intervals_from_an_aligned_start():
    assert runs(CronDataIntervalTimetable("@daily", UTC), utc(2024, 1, 1), 2) == [
        (utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 2)),
        (utc(2024, 1, 2), utc(2024, 1, 3), utc(2024, 1, 3)),
    ]


def test_unaligned_start_waits_for_the_next_cron_time():
    first = runs(CronDataIntervalTimetable("0 6 * * *", UTC), utc(2024, 1, 1, 10), 1)
    assert first == [(utc(2024, 1, 2, 6), utc(2024, 1, 3, 6), utc(2024, 1, 3, 6))]


@pytest.mark.parametrize(
    ("preset", "first_end"),
    [
        ("@hourly", utc(2024, 1, 1, 1)),
        ("@daily", utc(2024, 1, 2)),
        ("@weekly", utc(2024, 1, 14)),  # 2024-01-01 is a Monday: first Sunday start is the 7th
        ("@monthly", utc(2024, 2, 1)),
        ("@quarterly", utc(2024, 4, 1)),
        ("@yearly", utc(2025, 1, 1)),
    ],
)
def test_presets(preset, first_end):
    assert preset in CRON_PRESETS
    ((_, end, _),) = runs(CronDataIntervalTimetable(preset, UTC), utc(2024, 1, 1), 1)
    assert end == first_end


def test_end_date_stops_the_runs():
    timetable = CronDataIntervalTimetable("@daily", UTC)
    assert len(runs(timetable, utc(2024, 1, 1), 10, latest=utc(2024, 1, 3))) == 3


def test_no_start_date_means_no_automated_run():
    assert runs(CronDataIntervalTimetable("@daily", UTC), None, 1) == []
    assert runs(OnceTimetable(), None, 1) == []


def test_without_catchup_only_the_latest_interval_runs():
    before = datetime.now(UTC)
    ((start, end, _),) = runs(CronDataIntervalTimetable("@daily", UTC), utc(2000, 1, 1), 1, catchup=False)
    after = datetime.now(UTC)
    midnights = {d.replace(hour=0, minute=0, second=0, microsecond=0) for d in (before, after)}
    assert end in midnights and end - start == timedelta(days=1)


def test_without_catchup_a_future_start_date_is_kept():
    ((start, _, _),) = runs(CronDataIntervalTimetable("@daily", UTC), utc(2999, 1, 1), 1, catchup=False)
    assert start == utc(2999, 1, 1)


def test_fixed_time_schedule_keeps_wall_clock_across_spring_forward():
    # Europe/Berlin jumps from 02:00 CET to 03:00 CEST on 2024-03-31: 02:00 does not exist that day.
    starts = [s for s, _, _ in runs(CronDataIntervalTimetable("0 2 * * *", BERLIN), utc(2024, 3, 29), 4)]
    assert starts == [utc(2024, 3, 29, 1), utc(2024, 3, 30, 1), utc(2024, 3, 31, 1), utc(2024, 4, 1, 0)]
    assert [s.astimezone(BERLIN).hour for s in starts] == [2, 2, 3, 2]


def test_fixed_time_schedule_across_fall_back_takes_the_first_occurrence():
    # 2024-10-27 02:00 happens twice in Berlin; the run takes the first (CEST) one, the day lasts 25 hours.
    intervals = runs(CronDataIntervalTimetable("0 2 * * *", BERLIN), utc(2024, 10, 26), 2)
    assert [(s, e) for s, e, _ in intervals] == [
        (utc(2024, 10, 26, 0), utc(2024, 10, 27, 0)),
        (utc(2024, 10, 27, 0), utc(2024, 10, 28, 1)),
    ]


def test_hourly_schedule_keeps_absolute_spacing_across_dst():
    intervals = runs(CronDataIntervalTimetable("@hourly", BERLIN), utc(2024, 3, 30, 23, 30), 5)
    assert all(e - s == timedelta(hours=1) for s, e, _ in intervals)
    assert [s for s, _, _ in intervals] == [utc(2024, 3, 31, h) for h in range(0, 5)]


def test_manual_runs_get_the_last_complete_interval():
    cron = CronDataIntervalTimetable("@daily", UTC)
    assert cron.infer_manual_data_interval(run_after=utc(2024, 1, 5, 13)) == DataInterval(
        utc(2024, 1, 4), utc(2024, 1, 5)
    )
    delta = DeltaDataIntervalTimetable(timedelta(hours=2))
    assert delta.infer_manual_data_interval(run_after=utc(2024, 1, 5, 13)) == DataInterval(
        utc(2024, 1, 5, 11), utc(2024, 1, 5, 13)
    )
    trigger = CronTriggerTimetable("@daily", timezone=UTC, interval=timedelta(hours=1))
    assert trigger.infer_manual_data_interval(run_after=utc(2024, 1, 5, 13)) == DataInterval(
        utc(2024, 1, 5, 12), utc(2024, 1, 5, 13)
    )
    assert NullTimetable().infer_manual_data_interval(run_after=utc(2024, 1, 5)) == DataInterval.exact(
        utc(2024, 1, 5)
    )


def test_timedelta_data_intervals():
    assert runs(DeltaDataIntervalTimetable(timedelta(hours=6)), utc(2024, 1, 1, 1), 2) == [
        (utc(2024, 1, 1, 1), utc(2024, 1, 1, 7), utc(2024, 1, 1, 7)),
        (utc(2024, 1, 1, 7), utc(2024, 1, 1, 13), utc(2024, 1, 1, 13)),
    ]


def test_relativedelta_months():
    ends = [e for _, e, _ in runs(DeltaDataIntervalTimetable(relativedelta(months=1)), utc(2024, 1, 31), 2)]
    assert ends == [utc(2024, 2, 29), utc(2024, 3, 29)]


def test_trigger_timetable_runs_at_the_cron_time():
    assert runs(CronTriggerTimetable("0 6 * * *", timezone=UTC), utc(2024, 1, 1), 2) == [
        (utc(2024, 1, 1, 6), utc(2024, 1, 1, 6), utc(2024, 1, 1, 6)),
        (utc(2024, 1, 2, 6), utc(2024, 1, 2, 6), utc(2024, 1, 2, 6)),
    ]
    assert runs(
        DeltaTriggerTimetable(timedelta(hours=12), interval=timedelta(hours=12)), utc(2024, 1, 1), 1
    ) == [(utc(2023, 12, 31, 12), utc(2024, 1, 1), utc(2024, 1, 1))]


def test_trigger_timetable_without_catchup_runs_the_latest_past_time():
    before = datetime.now(UTC)
    ((_, _, run_after),) = runs(
        CronTriggerTimetable("@hourly", timezone=UTC), utc(2000, 1, 1), 1, catchup=False
    )
    after = datetime.now(UTC)
    assert run_after in {d.replace(minute=0, second=0, microsecond=0) for d in (before, after)}


def test_once_and_continuous():
    assert runs(OnceTimetable(), utc(2024, 1, 1), 3) == [(utc(2024, 1, 1), utc(2024, 1, 1), utc(2024, 1, 1))]
    continuous = ContinuousTimetable()
    restriction = TimeRestriction(earliest=utc(2024, 1, 1), latest=None, catchup=False)
    first = continuous.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert first.data_interval.start == utc(2024, 1, 1) and first.data_interval.end <= datetime.now(UTC)
    second = continuous.next_dagrun_info(
        last_automated_data_interval=first.data_interval, restriction=restriction
    )
    assert second.data_interval.start == first.data_interval.end
    assert isinstance(timetable_from_serialized(continuous.to_dict()), ContinuousTimetable)
    assert continuous.active_runs_limit == 1


def test_multiple_cron_trigger_picks_the_earliest():
    timetable = MultipleCronTriggerTimetable("0 6 * * *", "0 18 * * *", timezone=UTC)
    assert [r for _, _, r in runs(timetable, utc(2024, 1, 1), 3)] == [
        utc(2024, 1, 1, 6),
        utc(2024, 1, 1, 18),
        utc(2024, 1, 2, 6),
    ]


def test_events_timetable():
    timetable = EventsTimetable([utc(2024, 3, 1), utc(2024, 1, 1), utc(2024, 2, 1)])
    assert [r for _, _, r in runs(timetable, utc(2024, 1, 15), 5)] == [utc(2024, 2, 1), utc(2024, 3, 1)]


def test_invalid_cron_expression():
    with pytest.raises(AirflowTimetableInvalid):
        CronDataIntervalTimetable("61 * * * *", UTC).validate()
    with pytest.raises(AirflowTimetableInvalid):
        DAG("d", start_date=utc(2024, 1, 1), schedule="not a cron").validate()


@pytest.mark.parametrize(
    "timetable",
    [
        NullTimetable(),
        OnceTimetable(),
        CronDataIntervalTimetable("0 2 * * *", BERLIN),
        CronTriggerTimetable("*/15 * * * *", timezone=get_timezone("+05:30"), interval=timedelta(minutes=15)),
        MultipleCronTriggerTimetable(
            "0 6 * * *", "0 18 * * *", timezone=UTC, run_immediately=timedelta(minutes=5)
        ),
        DeltaDataIntervalTimetable(timedelta(hours=6)),
        DeltaTriggerTimetable(relativedelta(months=1, days=2)),
        EventsTimetable([utc(2024, 3, 1), utc(2024, 2, 1)], description="two dates"),
        AssetOrTimeSchedule(
            timetable=CronTriggerTimetable("@daily", timezone=UTC), assets=Asset("s3://a") & Asset("b")
        ),
    ],
)
def test_serialized_round_trip_computes_the_same_runs(timetable):
    data = timetable.to_dict()
    assert data["type"] and "summary" in data
    rebuilt = timetable_from_serialized(data)
    assert rebuilt.to_dict() == data
    assert runs(rebuilt, utc(2024, 1, 1), 4) == runs(timetable, utc(2024, 1, 1), 4)
    assert rebuilt.can_be_scheduled == timetable.can_be_scheduled


def test_schedule_in_the_serialized_dag_drives_the_scheduler():
    from tradewind.sdk.serialization import serialize_dag

    legacy = Airflow2DAG(
        "d", start_date=datetime(2024, 1, 1), schedule="0 6 * * *", end_date=datetime(2024, 1, 3)
    )
    serialized = serialize_dag(legacy)
    restriction = restriction_from_serialized(serialized)
    assert restriction == TimeRestriction(utc(2024, 1, 1), utc(2024, 1, 3), True)
    timetable = timetable_from_serialized(serialized["schedule"])
    assert [s for s, _, _ in runs(timetable, restriction.earliest, 5, latest=restriction.latest)] == [
        utc(2024, 1, 1, 6),
        utc(2024, 1, 2, 6),
    ]


def test_custom_timetables_serialize_by_class_path():
    class Custom(CronDataIntervalTimetable.__mro__[-2]):  # the Timetable base
        pass

    data = Custom().to_dict()
    assert data["type"] == "custom" and data["classpath"].endswith("Custom")
    with pytest.raises(ValueError):
        timetable_from_serialized(data)


def test_dateutil_and_pendulum_zones_serialize_by_name():
    import pendulum
    from dateutil import tz

    for start in (
        datetime(2024, 1, 1, tzinfo=tz.gettz("Europe/Berlin")),
        pendulum.datetime(2024, 1, 1, tz="Europe/Berlin"),
    ):
        dag = DAG("d", start_date=start, schedule="0 2 * * *")
        assert dag.timetable.to_dict()["timezone"] == "Europe/Berlin"
        assert [s for s, _, _ in runs(dag.timetable, utc(2024, 3, 30), 2)] == [
            utc(2024, 3, 30, 1),
            utc(2024, 3, 31, 1),
        ]


def test_dataset_or_time_schedule_airflow2_keyword():
    schedule = AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("@daily", timezone=UTC), datasets=[Asset("a")]
    )
    assert schedule.can_be_scheduled and schedule.asset_condition.objects == [Asset("a")]
    with pytest.raises(TypeError):
        AssetOrTimeSchedule(timetable=NullTimetable())
