"""Schedules: Airflow's Timetable API, the schedule normalisation a DAG applies to its `schedule` argument,
and the JSON form the scheduler computes runs from (it never imports DAG code).

Cron schedules are evaluated in the DAG's timezone (its start_date's): a fixed-time schedule
("0 2 * * *") keeps its wall-clock time across DST changes; any other ("0 * * * *", "*/10 * * * *")
keeps its spacing in absolute time. Times returned are timezone-aware UTC datetimes.

Serialized schedule (`Timetable.serialize()`, `timetable_from_serialized()`), always with "type" and
"summary":
    {"type": "null"} | {"type": "once"} | {"type": "continuous"}
    {"type": "cron_data_interval", "expression", "timezone"}
    {"type": "cron_trigger", "expression", "timezone", "interval", "run_immediately"}
    {"type": "multiple_cron_trigger", "expressions", "timezone", "interval", "run_immediately"}
    {"type": "delta_data_interval", "delta"} | {"type": "delta_trigger", "delta", "interval"}
    {"type": "events", "event_dates": [iso], "restrict_to_events", "description"}
    {"type": "asset_triggered", "condition"} | {"type": "asset_or_time", "timetable", "condition"}
    {"type": "custom", "classpath"}   (a user-defined Timetable: cannot be computed outside DAG code)
where an interval/delta is {"seconds": float} or {"relativedelta": {field: value}}, a timezone an IANA
name, "UTC" or a fixed offset "+05:30", run_immediately a bool or a number of seconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from tradewind.sdk.exceptions import AirflowTimetableInvalid, AirflowValueError

if TYPE_CHECKING:
    from dateutil.relativedelta import relativedelta

UTC = dt.UTC

CRON_PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


# ---------------------------------------------------------------------------------------------------------
# Time helpers


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(UTC)


def coerce_utc(value: dt.datetime | None) -> dt.datetime | None:
    """An aware UTC datetime (naive values are taken to be UTC, as Airflow's default timezone); None stays."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
        raise TypeError(f"expected a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_datetime(value: str, tz: dt.tzinfo | None = None) -> dt.datetime:
    """Parse an ISO 8601 date or datetime; without an offset it is in `tz` (default UTC)."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        import pendulum

        parsed = pendulum.parse(value, strict=False)  # type: ignore[assignment]
        if not isinstance(parsed, dt.datetime):
            raise ValueError(f"not a datetime: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = make_aware(parsed, tz or UTC)
    return parsed


def get_timezone(name: str) -> dt.tzinfo:
    """The tzinfo for a serialized timezone name ("UTC", an IANA name, or "+HH:MM")."""
    if name in ("UTC", "utc", "Etc/UTC", "Z"):
        return UTC
    if name[:1] in "+-" and ":" in name:
        sign = -1 if name[0] == "-" else 1
        hours, minutes = name[1:].split(":")
        return dt.timezone(sign * dt.timedelta(hours=int(hours), minutes=int(minutes)))
    import zoneinfo

    return zoneinfo.ZoneInfo(name)


def timezone_name(tz: dt.tzinfo) -> str:
    """A serializable name for `tz` (inverse of get_timezone)."""
    if tz is UTC:
        return "UTC"
    for attr in ("key", "zone"):
        name = getattr(tz, attr, None)
        if isinstance(name, str) and name:
            return "UTC" if name in ("UTC", "Etc/UTC") else name
    name = getattr(tz, "name", None)
    if isinstance(name, str) and name and "/" in name:
        return name
    filename = getattr(tz, "_filename", None)  # dateutil's tzfile
    if isinstance(filename, str) and "/" in filename:
        return filename.split("zoneinfo/")[-1]
    offset = tz.utcoffset(dt.datetime(2000, 1, 1)) or dt.timedelta(0)
    if offset == dt.timedelta(0) and (name in ("UTC", "+00:00", None) or str(tz) in ("UTC", "tzutc()")):
        return "UTC"
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    return f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"


def make_naive(value: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The wall-clock time of `value` in `tz`, without tzinfo."""
    return value.astimezone(tz).replace(tzinfo=None)


def make_aware(value: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """Attach `tz` to a wall-clock time: a time skipped by a DST change moves forward by the gap, an
    ambiguous one takes its first occurrence (what pendulum does for Airflow)."""
    before = tz.utcoffset(value.replace(fold=0))
    after = tz.utcoffset(value.replace(fold=1))
    if before is not None and after is not None and after > before:
        value = value + (after - before)
    return value.replace(tzinfo=tz, fold=0)


def encode_interval(value: dt.timedelta | relativedelta) -> dict[str, Any]:
    """JSON form of a timedelta or relativedelta."""
    if isinstance(value, dt.timedelta):
        return {"seconds": value.total_seconds()}
    fields = ("years", "months", "weeks", "days", "hours", "minutes", "seconds", "microseconds", "leapdays")
    absolute = ("year", "month", "day", "weekday", "hour", "minute", "second", "microsecond")
    data = {f: getattr(value, f) for f in fields if getattr(value, f, 0)}
    data.pop("weeks", None)
    for f in absolute:
        v = getattr(value, f, None)
        if v is not None:
            data[f] = v.weekday if f == "weekday" else v
    return {"relativedelta": data}


def decode_interval(data: Mapping[str, Any]) -> dt.timedelta | relativedelta:
    """Inverse of encode_interval."""
    if "seconds" in data and "relativedelta" not in data:
        return dt.timedelta(seconds=data["seconds"])
    from dateutil.relativedelta import relativedelta

    return relativedelta(**data["relativedelta"])


def _is_interval(value: Any) -> bool:
    if isinstance(value, dt.timedelta):
        return True
    try:
        from dateutil.relativedelta import relativedelta
    except ImportError:  # pragma: no cover - dateutil is a pinned dependency
        return False
    return isinstance(value, relativedelta)


# ---------------------------------------------------------------------------------------------------------
# Airflow's timetable data types


class DataInterval(NamedTuple):
    """The period of data a DAG run covers."""

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def exact(cls, at: dt.datetime) -> DataInterval:
        """A zero-length interval at `at`."""
        return cls(at, at)


class TimeRestriction(NamedTuple):
    """Bounds on automated runs: earliest (start_date), latest (end_date), and whether to catch up."""

    earliest: dt.datetime | None
    latest: dt.datetime | None
    catchup: bool


class DagRunInfo(NamedTuple):
    """When the next run may start (`run_after`) and the data interval it covers."""

    run_after: dt.datetime
    data_interval: DataInterval | None

    @classmethod
    def exact(cls, at: dt.datetime) -> DagRunInfo:
        """A run at `at` covering a zero-length interval."""
        return cls(run_after=at, data_interval=DataInterval.exact(at))

    @classmethod
    def interval(cls, start: dt.datetime, end: dt.datetime) -> DagRunInfo:
        """A run covering [start, end), which may start at `end`."""
        return cls(run_after=end, data_interval=DataInterval(start, end))

    @property
    def logical_date(self) -> dt.datetime:
        """The run's logical date: the start of its data interval."""
        return self.data_interval.start if self.data_interval is not None else self.run_after


class Timetable:
    """Base of every schedule (Airflow's Timetable protocol). A DAG file may subclass it, but such a DAG does
    not serialize (serialization._schedule): the scheduler computes only the built-in timetables."""

    periodic: bool = True
    can_be_scheduled: bool = True
    run_ordering: tuple[str, ...] = ("data_interval_end", "logical_date")
    active_runs_limit: int | None = None
    asset_condition: Any = None
    description: str = ""
    type_name: str = "custom"

    @property
    def can_run(self) -> bool:
        """Airflow 2's name for can_be_scheduled."""
        return self.can_be_scheduled

    @property
    def summary(self) -> str:
        """A short text for the UI."""
        return type(self).__name__

    @property
    def schedule_interval(self) -> Any:
        """What Airflow 2's `dag.schedule_interval` shows for this timetable."""
        return self

    def validate(self) -> None:
        """Raise AirflowTimetableInvalid if the timetable cannot work."""

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        """The data interval of a run triggered manually at `run_after`."""
        raise NotImplementedError

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        """The next automated run after the last one (None: no more runs)."""
        raise NotImplementedError

    def generate_run_id(
        self,
        *,
        run_type: str,
        run_after: dt.datetime | None = None,
        data_interval: DataInterval | None = None,
        logical_date: dt.datetime | None = None,
        **_: Any,
    ) -> str:
        """Airflow's run id: "<run_type>__<logical date ISO>" (the logical date, else the data interval's
        start, else run_after)."""
        when = logical_date or (data_interval.start if data_interval is not None else run_after)
        if when is None:
            raise ValueError("generate_run_id needs logical_date, data_interval or run_after")
        return f"{run_type}__{when.isoformat()}"

    def serialize(self) -> dict[str, Any]:
        """The JSON form (see the module docstring); custom timetables give only their class path."""
        return {"type": "custom", "classpath": f"{type(self).__module__}.{type(self).__qualname__}"}

    def to_dict(self) -> dict[str, Any]:
        """serialize() plus "type" and "summary"."""
        data = self.serialize()
        data.setdefault("type", self.type_name)
        data.setdefault("summary", self.summary)
        return data


class NullTimetable(Timetable):
    """No automated runs (schedule=None): manual triggers only."""

    can_be_scheduled = False
    periodic = False
    description = "Never, external triggers only"
    type_name = "null"

    @property
    def summary(self) -> str:
        return "None"

    @property
    def schedule_interval(self) -> Any:
        return None

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        return DataInterval.exact(run_after)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        return None

    def serialize(self) -> dict[str, Any]:
        return {"type": "null"}


class OnceTimetable(Timetable):
    """One run at the start date ("@once")."""

    periodic = False
    description = "Once, as soon as possible"
    type_name = "once"

    @property
    def summary(self) -> str:
        return "@once"

    @property
    def schedule_interval(self) -> Any:
        return "@once"

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        return DataInterval.exact(run_after)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None or restriction.earliest is None:
            return None
        if restriction.latest is not None and restriction.earliest > restriction.latest:
            return None
        return DagRunInfo.exact(restriction.earliest)

    def serialize(self) -> dict[str, Any]:
        return {"type": "once"}


class ContinuousTimetable(Timetable):
    """A new run as soon as the previous one ends ("@continuous"; at most one active run)."""

    periodic = False
    active_runs_limit = 1
    description = "As frequently as possible, but only one run at a time."
    type_name = "continuous"

    @property
    def summary(self) -> str:
        return "@continuous"

    @property
    def schedule_interval(self) -> Any:
        return "@continuous"

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        return DataInterval.exact(run_after)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        if restriction.earliest is None:
            return None
        now = utcnow()
        if last_automated_data_interval is not None:
            start = last_automated_data_interval.end
            end = now
        else:
            start = restriction.earliest
            end = max(restriction.earliest, now)
        if restriction.latest is not None and end > restriction.latest:
            return None
        return DagRunInfo.interval(start, end)

    def serialize(self) -> dict[str, Any]:
        return {"type": "continuous"}


# ---------------------------------------------------------------------------------------------------------
# Cron and delta arithmetic


class _CronMixin:
    """Cron evaluation in a timezone, with Airflow's DST rules."""

    def __init__(self, cron: str, timezone: str | dt.tzinfo) -> None:
        self._original = cron
        self._expression = CRON_PRESETS.get(cron, cron)
        self._timezone = get_timezone(timezone) if isinstance(timezone, str) else timezone

    @property
    def summary(self) -> str:
        return self._original

    @property
    def description(self) -> str:  # type: ignore[override]
        return self._original

    def validate(self) -> None:
        from croniter import croniter

        try:
            croniter(self._expression)
        except Exception as err:
            raise AirflowTimetableInvalid(f"Invalid cron expression: {self._expression!r}: {err}") from None

    @cached_property
    def _fixed_time(self) -> bool:
        from croniter import croniter

        minutes, hours = croniter(self._expression).expanded[:2]
        return len(minutes) == 1 and len(hours) == 1 and minutes[0] != "*" and hours[0] != "*"

    def _cron(self, naive: dt.datetime) -> Any:
        from croniter import croniter

        return croniter(self._expression, start_time=naive)

    def _get_next(self, current: dt.datetime) -> dt.datetime:
        naive = make_naive(current, self._timezone)
        scheduled = self._cron(naive).get_next(dt.datetime)
        if self._fixed_time:
            return make_aware(scheduled, self._timezone).astimezone(UTC)
        return current.astimezone(UTC) + (scheduled - naive)

    def _get_prev(self, current: dt.datetime) -> dt.datetime:
        naive = make_naive(current, self._timezone)
        scheduled = self._cron(naive).get_prev(dt.datetime)
        if self._fixed_time:
            return make_aware(scheduled, self._timezone).astimezone(UTC)
        return current.astimezone(UTC) - (naive - scheduled)

    def _align_to_next(self, current: dt.datetime) -> dt.datetime:
        following = self._get_next(current)
        if self._get_prev(following) != current:
            return following
        return current.astimezone(UTC)

    def _align_to_prev(self, current: dt.datetime) -> dt.datetime:
        previous = self._get_prev(current)
        if self._get_next(previous) != current:
            return previous
        return current.astimezone(UTC)


class _DeltaMixin:
    """Fixed-interval arithmetic (timedelta in absolute time, relativedelta in UTC calendar terms)."""

    def __init__(self, delta: dt.timedelta | relativedelta) -> None:
        self._delta = delta

    @property
    def summary(self) -> str:
        return str(self._delta)

    def validate(self) -> None:
        now = dt.datetime(2000, 1, 1, tzinfo=UTC)
        if now + self._delta <= now:
            raise AirflowTimetableInvalid("schedule interval must be positive")

    def _get_next(self, current: dt.datetime) -> dt.datetime:
        return (current.astimezone(UTC) + self._delta).astimezone(UTC)

    def _get_prev(self, current: dt.datetime) -> dt.datetime:
        return (current.astimezone(UTC) - self._delta).astimezone(UTC)

    def _align_to_next(self, current: dt.datetime) -> dt.datetime:
        return current.astimezone(UTC)

    def _align_to_prev(self, current: dt.datetime) -> dt.datetime:
        return current.astimezone(UTC)


class _DataIntervalTimetable(Timetable):
    """Runs cover consecutive intervals; a run starts when its interval ends (Airflow 2's semantics)."""

    _get_next: Any
    _get_prev: Any
    _align_to_next: Any
    _align_to_prev: Any

    def _skip_to_latest(self, earliest: dt.datetime | None) -> dt.datetime:
        raise NotImplementedError

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        earliest = restriction.earliest
        if not restriction.catchup:
            earliest = self._skip_to_latest(earliest)
        elif earliest is not None:
            earliest = self._align_to_next(earliest)
        if last_automated_data_interval is None:
            if earliest is None:
                return None
            start = earliest
        elif earliest is not None:
            start = max(last_automated_data_interval.end, earliest)
        else:
            start = last_automated_data_interval.end
        if restriction.latest is not None and start > restriction.latest:
            return None
        return DagRunInfo.interval(start=start, end=self._get_next(start))


class CronDataIntervalTimetable(_CronMixin, _DataIntervalTimetable):
    """Cron schedule whose runs cover the interval between two cron times (Airflow 2's `schedule="@daily"`)."""

    type_name = "cron_data_interval"

    @property
    def schedule_interval(self) -> Any:
        return self._original

    def _skip_to_latest(self, earliest: dt.datetime | None) -> dt.datetime:
        now = utcnow()
        last_start = self._get_prev(now)
        next_start = self._get_next(last_start)
        new_start = last_start if next_start == now else self._get_prev(last_start)
        if earliest is None:
            return new_start
        return max(new_start, self._align_to_next(earliest))

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        end = self._align_to_prev(run_after)
        return DataInterval(start=self._get_prev(end), end=end)

    def serialize(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "expression": self._expression,
            "timezone": timezone_name(self._timezone),
            "summary": self._original,
        }


class DeltaDataIntervalTimetable(_DeltaMixin, _DataIntervalTimetable):
    """Fixed-interval schedule whose runs cover consecutive intervals (Airflow 2's `timedelta(days=1)`)."""

    type_name = "delta_data_interval"

    @property
    def schedule_interval(self) -> Any:
        return self._delta

    def _skip_to_latest(self, earliest: dt.datetime | None) -> dt.datetime:
        new_start = self._get_prev(utcnow())
        if earliest is None:
            return new_start
        return max(new_start, earliest.astimezone(UTC))

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        return DataInterval(start=self._get_prev(run_after), end=run_after)

    def serialize(self) -> dict[str, Any]:
        return {"type": self.type_name, "delta": encode_interval(self._delta), "summary": self.summary}


class _TriggerTimetable(Timetable):
    """Runs happen at each schedule time and cover [time - interval, time] (Airflow 3's default)."""

    _interval: dt.timedelta | relativedelta
    _get_next: Any
    _get_prev: Any
    _align_to_next: Any
    _align_to_prev: Any

    def _calc_first_run(self) -> dt.datetime:
        raise NotImplementedError

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        return DataInterval((run_after - self._interval).astimezone(UTC), run_after)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        if restriction.catchup:
            if last_automated_data_interval is not None:
                next_time = self._get_next(last_automated_data_interval.end)
            elif restriction.earliest is None:
                next_time = self._calc_first_run()
            else:
                next_time = self._align_to_next(restriction.earliest)
        else:
            candidates = [self._align_to_prev(utcnow())]
            if last_automated_data_interval is not None:
                candidates.append(self._get_next(last_automated_data_interval.end))
            elif restriction.earliest is None:
                candidates.append(self._calc_first_run())
            if restriction.earliest is not None:
                candidates.append(self._align_to_next(restriction.earliest))
            next_time = max(candidates)
        if restriction.latest is not None and restriction.latest < next_time:
            return None
        return DagRunInfo.interval((next_time - self._interval).astimezone(UTC), next_time)


def _encode_run_immediately(value: bool | dt.timedelta | None) -> bool | float | None:
    return value.total_seconds() if isinstance(value, dt.timedelta) else value


def _decode_run_immediately(value: bool | float | None) -> bool | dt.timedelta | None:
    if isinstance(value, bool) or value is None:
        return value
    return dt.timedelta(seconds=value)


class CronTriggerTimetable(_CronMixin, _TriggerTimetable):
    """Cron schedule: a run at each cron time, covering [time - interval, time] (Airflow 3's `"@daily"`).

    `run_immediately` decides the first run when the DAG has no start date (True: the latest past time;
    False: the next future time; a timedelta/None: the past time if it is that recent)."""

    type_name = "cron_trigger"

    def __init__(
        self,
        cron: str,
        *,
        timezone: str | dt.tzinfo,
        interval: dt.timedelta | relativedelta = dt.timedelta(),
        run_immediately: bool | dt.timedelta | None = False,
    ) -> None:
        super().__init__(cron, timezone)
        self._interval = interval
        self._run_immediately = run_immediately

    @property
    def schedule_interval(self) -> Any:
        return self._original

    def _calc_first_run(self) -> dt.datetime:
        now = utcnow()
        past = self._align_to_prev(now)
        following = self._align_to_next(now)
        if self._run_immediately is True:
            return past
        if isinstance(self._run_immediately, dt.timedelta):
            buffer = self._run_immediately
        else:
            buffer = max((following - past) / 10, dt.timedelta(minutes=5))
        return past if now - past <= buffer else following

    def serialize(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "expression": self._expression,
            "timezone": timezone_name(self._timezone),
            "interval": encode_interval(self._interval),
            "run_immediately": _encode_run_immediately(self._run_immediately),
            "summary": self._original,
        }


class DeltaTriggerTimetable(_DeltaMixin, _TriggerTimetable):
    """Fixed-interval schedule: a run every `delta`, covering [time - interval, time] (Airflow 3's timedelta)."""

    type_name = "delta_trigger"

    def __init__(
        self, delta: dt.timedelta | relativedelta, *, interval: dt.timedelta | relativedelta = dt.timedelta()
    ) -> None:
        super().__init__(delta)
        self._interval = interval

    @property
    def schedule_interval(self) -> Any:
        return self._delta

    def _calc_first_run(self) -> dt.datetime:
        return self._align_to_prev(utcnow())

    def serialize(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "delta": encode_interval(self._delta),
            "interval": encode_interval(self._interval),
            "summary": self.summary,
        }


class MultipleCronTriggerTimetable(Timetable):
    """Several cron expressions; a run whenever any of them fires (one run per instant)."""

    type_name = "multiple_cron_trigger"

    def __init__(
        self,
        *crons: str,
        timezone: str | dt.tzinfo,
        interval: dt.timedelta | relativedelta = dt.timedelta(),
        run_immediately: bool | dt.timedelta | None = False,
    ) -> None:
        if not crons:
            raise ValueError("cron expression required")
        self._timetables = [
            CronTriggerTimetable(c, timezone=timezone, interval=interval, run_immediately=run_immediately)
            for c in crons
        ]

    @property
    def summary(self) -> str:
        return ", ".join(t.summary for t in self._timetables)

    def validate(self) -> None:
        for timetable in self._timetables:
            timetable.validate()

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        return min(
            (t.infer_manual_data_interval(run_after=run_after) for t in self._timetables),
            key=lambda i: i.start,
        )

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        infos = [
            t.next_dagrun_info(
                last_automated_data_interval=last_automated_data_interval, restriction=restriction
            )
            for t in self._timetables
        ]
        now = utcnow().timestamp()

        def key(info: DagRunInfo | None) -> float:
            if info is None:
                return float("inf")
            ts = info.logical_date.timestamp()
            if restriction.catchup:
                return ts
            return -ts if ts <= now else ts

        best = min(infos, key=key)
        return best

    def serialize(self) -> dict[str, Any]:
        first = self._timetables[0]
        return {
            "type": self.type_name,
            "expressions": [t._expression for t in self._timetables],
            "timezone": timezone_name(first._timezone),
            "interval": encode_interval(first._interval),
            "run_immediately": _encode_run_immediately(first._run_immediately),
            "summary": self.summary,
        }


class EventsTimetable(Timetable):
    """Runs at a fixed list of datetimes (Airflow's EventsTimetable)."""

    type_name = "events"

    def __init__(
        self,
        event_dates: Iterable[dt.datetime],
        restrict_to_events: bool = False,
        presorted: bool = False,
        description: str | None = None,
    ) -> None:
        dates = [coerce_utc(d) for d in event_dates]
        self.event_dates: list[dt.datetime] = dates if presorted else sorted(dates)  # type: ignore[arg-type]
        self.restrict_to_events = restrict_to_events
        self._description = description
        self.periodic = False

    @property
    def summary(self) -> str:
        return self._description or f"{len(self.event_dates)} events"

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        if not self.restrict_to_events:
            return DataInterval.exact(run_after)
        past = [d for d in self.event_dates if d <= run_after]
        return DataInterval.exact(past[-1] if past else self.event_dates[0])

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        if last_automated_data_interval is None:
            candidates = self.event_dates
        else:
            candidates = [d for d in self.event_dates if d > last_automated_data_interval.end]
        if not restriction.catchup:
            now = utcnow()
            past = [d for d in candidates if d <= now]
            if past:
                candidates = [past[-1], *[d for d in candidates if d > now]]
        for when in candidates:
            if restriction.earliest is not None and when < restriction.earliest:
                continue
            if restriction.latest is not None and when > restriction.latest:
                return None
            return DagRunInfo.exact(when)
        return None

    def serialize(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "event_dates": [d.isoformat() for d in self.event_dates],
            "restrict_to_events": self.restrict_to_events,
            "description": self._description,
            "summary": self.summary,
        }


class AssetTriggeredTimetable(Timetable):
    """Runs when assets are updated (schedule=[Asset(...), ...] or a condition built with & and |)."""

    periodic = False
    can_be_scheduled = False
    run_ordering = ("logical_date",)
    description = "Triggered by assets"
    type_name = "asset_triggered"

    def __init__(self, assets: Any) -> None:
        from tradewind.sdk.assets import AssetAll, BaseAsset

        if not isinstance(assets, BaseAsset):
            assets = AssetAll(*assets)
        self.asset_condition = assets

    @property
    def summary(self) -> str:
        return "Asset"

    @property
    def schedule_interval(self) -> Any:
        return "Dataset"

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        return DataInterval.exact(run_after)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        return None

    def serialize(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "condition": self.asset_condition.serialize(),
            "summary": self.summary,
        }


DatasetTriggeredTimetable = AssetTriggeredTimetable


class AssetOrTimeSchedule(AssetTriggeredTimetable):
    """Runs on a time schedule and also whenever the asset condition is met."""

    type_name = "asset_or_time"

    def __init__(self, *, timetable: Timetable, assets: Any = None, datasets: Any = None) -> None:
        if (assets is None) == (datasets is None):
            raise TypeError("AssetOrTimeSchedule needs exactly one of 'assets' and 'datasets'")
        super().__init__(assets if assets is not None else datasets)
        self.timetable = timetable
        self.can_be_scheduled = timetable.can_be_scheduled
        self.periodic = timetable.periodic
        self.run_ordering = timetable.run_ordering
        self.active_runs_limit = timetable.active_runs_limit

    @property
    def summary(self) -> str:
        return f"Asset or {self.timetable.summary}"

    def validate(self) -> None:
        self.timetable.validate()

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        return self.timetable.infer_manual_data_interval(run_after=run_after)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        return self.timetable.next_dagrun_info(
            last_automated_data_interval=last_automated_data_interval, restriction=restriction
        )

    def serialize(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "timetable": self.timetable.to_dict(),
            "condition": self.asset_condition.serialize(),
            "summary": self.summary,
        }


DatasetOrTimeSchedule = AssetOrTimeSchedule


# ---------------------------------------------------------------------------------------------------------
# Normalisation and (de)serialization


def create_timetable(schedule: Any, timezone: dt.tzinfo, *, data_intervals: bool) -> Timetable:
    """The Timetable for a DAG's `schedule` value: None, "@once", "@continuous", a cron expression or
    preset, a timedelta/relativedelta, a Timetable, an asset (or a list of them / an asset condition).

    `data_intervals` picks Airflow 2's data-interval timetables for cron and delta schedules; otherwise
    Airflow 3's trigger timetables. Raises AirflowTimetableInvalid (also a ValueError) for anything else."""
    from tradewind.sdk.assets import AssetAll, BaseAsset

    # Compute with the zone the scheduler will rebuild from the serialized name (pytz-style zones, for
    # one, cannot be attached with datetime.replace).
    timezone = get_timezone(timezone_name(timezone))
    if schedule is None:
        return NullTimetable()
    if isinstance(schedule, Timetable):
        return schedule
    if isinstance(schedule, str):
        if schedule == "@once":
            return OnceTimetable()
        if schedule == "@continuous":
            return ContinuousTimetable()
        if data_intervals:
            return CronDataIntervalTimetable(schedule, timezone)
        return CronTriggerTimetable(schedule, timezone=timezone)
    if _is_interval(schedule):
        if data_intervals:
            return DeltaDataIntervalTimetable(schedule)
        return DeltaTriggerTimetable(schedule)
    if isinstance(schedule, BaseAsset):
        return AssetTriggeredTimetable(schedule)
    if isinstance(schedule, Iterable):
        items = list(schedule)
        if items and all(isinstance(item, BaseAsset) for item in items):
            return AssetTriggeredTimetable(AssetAll(*items))
        raise _InvalidSchedule(
            "All elements in 'schedule' should be either assets, asset references, or asset aliases"
        )
    raise _InvalidSchedule(f"{schedule!r} is not a valid schedule.")


class _InvalidSchedule(AirflowTimetableInvalid, AirflowValueError):
    """A schedule value of the wrong type."""


def timetable_from_serialized(schedule: Mapping[str, Any]) -> Timetable:
    """Rebuild a Timetable from its JSON form (`Timetable.to_dict()`); ValueError for "custom"."""
    kind = schedule["type"]
    if kind == "null":
        return NullTimetable()
    if kind == "once":
        return OnceTimetable()
    if kind == "continuous":
        return ContinuousTimetable()
    if kind == "cron_data_interval":
        timetable = CronDataIntervalTimetable(schedule["expression"], get_timezone(schedule["timezone"]))
        timetable._original = schedule.get("summary") or schedule["expression"]
        return timetable
    if kind == "cron_trigger":
        trigger = CronTriggerTimetable(
            schedule["expression"],
            timezone=get_timezone(schedule["timezone"]),
            interval=decode_interval(schedule.get("interval") or {"seconds": 0}),
            run_immediately=_decode_run_immediately(schedule.get("run_immediately", False)),
        )
        trigger._original = schedule.get("summary") or schedule["expression"]
        return trigger
    if kind == "multiple_cron_trigger":
        return MultipleCronTriggerTimetable(
            *schedule["expressions"],
            timezone=get_timezone(schedule["timezone"]),
            interval=decode_interval(schedule.get("interval") or {"seconds": 0}),
            run_immediately=_decode_run_immediately(schedule.get("run_immediately", False)),
        )
    if kind == "delta_data_interval":
        return DeltaDataIntervalTimetable(decode_interval(schedule["delta"]))
    if kind == "delta_trigger":
        return DeltaTriggerTimetable(
            decode_interval(schedule["delta"]),
            interval=decode_interval(schedule.get("interval") or {"seconds": 0}),
        )
    if kind == "events":
        return EventsTimetable(
            [parse_datetime(d) for d in schedule["event_dates"]],
            restrict_to_events=schedule.get("restrict_to_events", False),
            presorted=True,
            description=schedule.get("description"),
        )
    if kind in ("asset_triggered", "asset_or_time"):
        from tradewind.sdk.assets import condition_from_serialized

        condition = condition_from_serialized(schedule["condition"])
        if kind == "asset_triggered":
            return AssetTriggeredTimetable(condition)
        return AssetOrTimeSchedule(
            timetable=timetable_from_serialized(schedule["timetable"]), assets=condition
        )
    raise ValueError(
        f"cannot compute a {kind!r} schedule outside the DAG's code: {schedule.get('classpath')}"
    )


def restriction_from_serialized(serialized_dag: Mapping[str, Any]) -> TimeRestriction:
    """The TimeRestriction for automated runs of a serialized DAG (earliest: its effective start date)."""
    start = serialized_dag.get("effective_start_date") or serialized_dag.get("start_date")
    end = serialized_dag.get("end_date")
    return TimeRestriction(
        earliest=parse_datetime(start) if start else None,
        latest=parse_datetime(end) if end else None,
        catchup=bool(serialized_dag.get("catchup")),
    )
