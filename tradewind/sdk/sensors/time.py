"""TimeSensor (+Async): wait until a time of day in the DAG's timezone."""

from __future__ import annotations

import datetime
from typing import Any

import pendulum

from tradewind.sdk.exceptions import TaskDeferred
from tradewind.sdk.sensors.base import BaseSensorOperator
from tradewind.sdk.triggers import DateTimeTrigger


class TimeSensor(BaseSensorOperator):
    """Done once the time of day (in the DAG's timezone) is past `target_time`; `deferrable` waits in a
    DateTimeTrigger for today's `target_time`."""

    def __init__(
        self,
        *,
        target_time: datetime.time,
        deferrable: bool = False,
        end_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.target_time = target_time
        self.deferrable = deferrable
        self.end_from_trigger = end_from_trigger

    def _timezone(self) -> Any:
        dag = getattr(self, "dag", None)
        return getattr(dag, "timezone", None) or pendulum.UTC

    def poke(self, context: Any) -> bool:
        """Whether now, in the DAG's timezone, is past the target time of day."""
        return pendulum.now(self._timezone()).time() > self.target_time

    def target_datetime(self) -> datetime.datetime:
        """Today's `target_time` in the DAG's timezone, in UTC."""
        today = pendulum.now(self._timezone())
        moment = today.replace(
            hour=self.target_time.hour,
            minute=self.target_time.minute,
            second=self.target_time.second,
            microsecond=self.target_time.microsecond,
        )
        return moment.in_timezone("UTC")

    def execute(self, context: Any) -> Any:
        """Poke, or with `deferrable` defer to a DateTimeTrigger (returning at once if the time passed)."""
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        raise TaskDeferred(
            trigger=DateTimeTrigger(moment=self.target_datetime(), end_from_trigger=self.end_from_trigger),
            method_name="execute_complete",
        )


class TimeSensorAsync(TimeSensor):
    """TimeSensor that always defers (Airflow 2's async variant)."""

    def __init__(self, *, target_time: datetime.time, end_from_trigger: bool = False, **kwargs: Any) -> None:
        kwargs.pop("deferrable", None)
        super().__init__(
            target_time=target_time, deferrable=True, end_from_trigger=end_from_trigger, **kwargs
        )
