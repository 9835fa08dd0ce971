"""Calendar branching: BranchDayOfWeekOperator, BranchDateTimeOperator, and the WeekDay helper."""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable, Mapping
from typing import Any

import pendulum

from tradewind.sdk.operators.branch import BaseBranchOperator


class WeekDay(enum.IntEnum):
    """Days of the week, ISO numbered (Monday is 1), as Airflow's `airflow.utils.weekday.WeekDay`."""

    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7

    @classmethod
    def get_weekday_number(cls, week_day_str: str) -> int:
        """The ISO number of a day name ("Monday", "monday"...)."""
        try:
            return cls[week_day_str.upper()].value
        except KeyError:
            raise AttributeError(f'Invalid Week Day passed: "{week_day_str}"') from None

    @classmethod
    def convert(cls, day: str | WeekDay) -> int:
        """The ISO number of a day given by name or WeekDay."""
        return day.value if isinstance(day, WeekDay) else cls.get_weekday_number(day)

    @classmethod
    def validate_week_day(cls, week_day: str | WeekDay | Iterable[str | WeekDay]) -> set[int]:
        """The ISO numbers of one day or a collection of days."""
        if isinstance(week_day, str | WeekDay):
            return {cls.convert(week_day)}
        return {cls.convert(day) for day in week_day}


def _now_or_logical(context: Mapping[str, Any], use_task_logical_date: bool) -> datetime.datetime:
    if use_task_logical_date:
        return context["logical_date"]
    return pendulum.now("UTC")


class BranchDayOfWeekOperator(BaseBranchOperator):
    """Follows `follow_task_ids_if_true` on the given week day(s), else `follow_task_ids_if_false` (today in
    UTC, or the run's logical date with `use_task_logical_date`)."""

    def __init__(
        self,
        *,
        follow_task_ids_if_true: str | Iterable[str],
        follow_task_ids_if_false: str | Iterable[str],
        week_day: str | WeekDay | Iterable[str | WeekDay],
        use_task_logical_date: bool = False,
        use_task_execution_day: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.follow_task_ids_if_true = follow_task_ids_if_true
        self.follow_task_ids_if_false = follow_task_ids_if_false
        self.week_day = week_day
        self.use_task_logical_date = use_task_logical_date or use_task_execution_day
        self._week_day_num = WeekDay.validate_week_day(week_day)

    def choose_branch(self, context: Mapping[str, Any]) -> str | Iterable[str]:
        """The true branch on a matching day."""
        day = _now_or_logical(context, self.use_task_logical_date).isoweekday()
        return self.follow_task_ids_if_true if day in self._week_day_num else self.follow_task_ids_if_false


class BranchDateTimeOperator(BaseBranchOperator):
    """Follows `follow_task_ids_if_true` when now (or the logical date) is within [target_lower,
    target_upper]; bounds are datetimes, or times of day; either may be None (open)."""

    def __init__(
        self,
        *,
        follow_task_ids_if_true: str | Iterable[str],
        follow_task_ids_if_false: str | Iterable[str],
        target_lower: datetime.datetime | datetime.time | None,
        target_upper: datetime.datetime | datetime.time | None,
        use_task_logical_date: bool = False,
        use_task_execution_date: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if target_lower is None and target_upper is None:
            raise ValueError(
                "Both target_upper and target_lower are None. At least one must be defined to be compared to "
                "the current datetime"
            )
        self.target_lower = target_lower
        self.target_upper = target_upper
        self.follow_task_ids_if_true = follow_task_ids_if_true
        self.follow_task_ids_if_false = follow_task_ids_if_false
        self.use_task_logical_date = use_task_logical_date or use_task_execution_date

    def choose_branch(self, context: Mapping[str, Any]) -> str | Iterable[str]:
        """The true branch inside the window."""
        now = _now_or_logical(context, self.use_task_logical_date)
        zone = getattr(getattr(self, "dag", None), "timezone", None) or pendulum.UTC
        local = pendulum.instance(now).in_timezone(zone).replace(tzinfo=None)

        def bound(target: Any) -> datetime.datetime | None:
            if target is None:
                return None
            if isinstance(target, datetime.time):
                return datetime.datetime.combine(local.date(), target)
            if target.tzinfo is not None:
                return pendulum.instance(target).in_timezone(zone).replace(tzinfo=None)
            return target

        lower, upper = bound(self.target_lower), bound(self.target_upper)
        if lower is not None and upper is not None and upper < lower:
            upper += datetime.timedelta(days=1)  # a window across midnight
        inside = (lower is None or lower <= local) and (upper is None or local <= upper)
        return self.follow_task_ids_if_true if inside else self.follow_task_ids_if_false
