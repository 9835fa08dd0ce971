"""DateTimeSensor (+Async): wait until a given (templated) date-time."""

from __future__ import annotations

import datetime
from collections.abc import Collection
from typing import Any

from tradewind.sdk.context import parse_datetime
from tradewind.sdk.exceptions import TaskDeferred
from tradewind.sdk.sensors.base import BaseSensorOperator
from tradewind.sdk.triggers import DateTimeTrigger


class DateTimeSensor(BaseSensorOperator):
    """Done once now is past `target_time` (a datetime, or a templated ISO string; naive means UTC).
    `deferrable` waits in a DateTimeTrigger."""

    template_fields: Collection[str] = ("target_time",)

    def __init__(
        self,
        *,
        target_time: str | datetime.datetime,
        deferrable: bool = False,
        end_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(target_time, datetime.datetime):
            self.target_time = target_time.isoformat()
        elif isinstance(target_time, str):
            self.target_time = target_time
        else:
            raise TypeError(
                f"Expected str or datetime.datetime type for target_time. Got {type(target_time)}"
            )
        self.deferrable = deferrable
        self.end_from_trigger = end_from_trigger

    @property
    def target_datetime(self) -> datetime.datetime:
        """`target_time` as an aware datetime."""
        moment = parse_datetime(self.target_time)
        assert moment is not None
        return moment

    def poke(self, context: Any) -> bool:
        """Whether the target has passed."""
        return datetime.datetime.now(datetime.UTC) > self.target_datetime

    def execute(self, context: Any) -> Any:
        """Poke, or with `deferrable` defer to a DateTimeTrigger (returning at once if the moment passed)."""
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        raise TaskDeferred(
            trigger=DateTimeTrigger(moment=self.target_datetime, end_from_trigger=self.end_from_trigger),
            method_name="execute_complete",
        )


class DateTimeSensorAsync(DateTimeSensor):
    """DateTimeSensor that always defers (Airflow 2's async variant)."""

    def __init__(
        self, *, target_time: str | datetime.datetime, end_from_trigger: bool = False, **kwargs: Any
    ) -> None:
        kwargs.pop("deferrable", None)
        super().__init__(
            target_time=target_time, deferrable=True, end_from_trigger=end_from_trigger, **kwargs
        )
