"""TimeDeltaSensor (+Async): wait until a delta after the run's data interval end."""

from __future__ import annotations

import datetime
from typing import Any

from tradewind.sdk.exceptions import TaskDeferred
from tradewind.sdk.sensors.base import BaseSensorOperator
from tradewind.sdk.triggers import DateTimeTrigger


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _base_time(context: Any) -> datetime.datetime:
    """The data interval's end, or (a run without one, Airflow 3) the run's run_after / logical date."""
    return context.get("data_interval_end") or context.get("run_after") or context["logical_date"]


class TimeDeltaSensor(BaseSensorOperator):
    """Done once now is past the data interval end + `delta`; `deferrable` waits in a DateTimeTrigger."""

    def __init__(
        self,
        *,
        delta: datetime.timedelta,
        deferrable: bool = False,
        end_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.delta = delta
        self.deferrable = deferrable
        self.end_from_trigger = end_from_trigger

    def target(self, context: Any) -> datetime.datetime:
        """The moment the sensor waits for."""
        return _base_time(context) + self.delta

    def poke(self, context: Any) -> bool:
        """Whether the target moment has passed."""
        target = self.target(context)
        return _utcnow() > target

    def execute(self, context: Any) -> Any:
        """Poke, or with `deferrable` defer to a DateTimeTrigger (returning at once if the moment passed)."""
        if not self.deferrable:
            return super().execute(context)
        target = self.target(context)
        if _utcnow() > target:
            return None
        raise TaskDeferred(
            trigger=DateTimeTrigger(moment=target, end_from_trigger=self.end_from_trigger),
            method_name="execute_complete",
        )


class TimeDeltaSensorAsync(TimeDeltaSensor):
    """TimeDeltaSensor that always defers (Airflow 2's async variant)."""

    def __init__(self, *, delta: datetime.timedelta, end_from_trigger: bool = False, **kwargs: Any) -> None:
        kwargs.pop("deferrable", None)
        super().__init__(delta=delta, deferrable=True, end_from_trigger=end_from_trigger, **kwargs)


class WaitSensor(BaseSensorOperator):
    """Waits `time_to_wait` from when the task starts (Airflow's WaitSensor)."""

    def __init__(
        self, *, time_to_wait: datetime.timedelta | int, deferrable: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.time_to_wait = (
            time_to_wait
            if isinstance(time_to_wait, datetime.timedelta)
            else datetime.timedelta(minutes=time_to_wait)
        )
        self.deferrable = deferrable

    def execute(self, context: Any) -> None:
        """Sleep, or defer to a DateTimeTrigger, for `time_to_wait`."""
        target = _utcnow() + self.time_to_wait
        if self.deferrable:
            raise TaskDeferred(trigger=DateTimeTrigger(moment=target), method_name="execute_complete")
        import time

        time.sleep(self.time_to_wait.total_seconds())
