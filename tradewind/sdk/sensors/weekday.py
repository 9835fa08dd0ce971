"""DayOfWeekSensor: wait for a given day of the week."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pendulum

from tradewind.sdk.operators.weekday import WeekDay
from tradewind.sdk.sensors.base import BaseSensorOperator


class DayOfWeekSensor(BaseSensorOperator):
    """Done on the given week day(s): today in UTC, or the run's logical date with `use_task_logical_date`."""

    def __init__(
        self,
        *,
        week_day: str | WeekDay | Iterable[str | WeekDay],
        use_task_logical_date: bool = False,
        use_task_execution_day: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.week_day = week_day
        self.use_task_logical_date = use_task_logical_date or use_task_execution_day
        self._week_day_num = WeekDay.validate_week_day(week_day)

    def poke(self, context: Any) -> bool:
        """Whether today (or the logical date) is one of the days."""
        moment = context["logical_date"] if self.use_task_logical_date else pendulum.now("UTC")
        return moment.isoweekday() in self._week_day_num
