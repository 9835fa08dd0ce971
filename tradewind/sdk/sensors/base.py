"""BaseSensorOperator and PokeReturnValue: poll a condition until it holds, times out or is rescheduled."""

from __future__ import annotations

import datetime
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from tradewind.sdk.baseoperator import BaseOperator
from tradewind.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTimeout,
    TaskDeferralError,
    TaskDeferralTimeout,
)
from tradewind.sdk.execution import default_resume
from tradewind.sdk.operators.branch import SkipMixin

log = logging.getLogger(__name__)


class PokeReturnValue:
    """What `poke` may return instead of a bool: whether the sensor is done and the XCom value to push."""

    def __init__(self, is_done: bool, xcom_value: Any = None) -> None:
        self.is_done = is_done
        self.xcom_value = xcom_value

    def __bool__(self) -> bool:
        return bool(self.is_done)

    def __repr__(self) -> str:
        return f"PokeReturnValue(is_done={self.is_done!r}, xcom_value={self.xcom_value!r})"


def _to_seconds(value: Any, name: str) -> float:
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AirflowException(f"The {name} must be a non-negative number or timedelta, got {value!r}")
    if value < 0:
        raise AirflowException(f"The {name} must be a non-negative number or timedelta, got {value!r}")
    return float(value)


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class BaseSensorOperator(BaseOperator, SkipMixin):
    """Base of sensors: `poke(context)` is called every `poke_interval` seconds until it returns True (or a
    done PokeReturnValue, whose xcom_value becomes the task's XCom).

    mode "poke" waits in the task's own process; "reschedule" ends the try as up_for_reschedule and runs
    again later, the timeout then counting from the first try's start. Past `timeout` seconds:
    AirflowSensorTimeout (no retry), or skipped with `soft_fail`. `exponential_backoff` grows the interval
    (capped by `max_wait`); `silent_fail` treats a poke error as "not yet"; `never_fail` skips on errors.
    """

    ui_color = "#e6f1f2"
    valid_modes = ("poke", "reschedule")
    _is_sensor = True

    def __init__(
        self,
        *,
        poke_interval: float | datetime.timedelta = 60,
        timeout: float | datetime.timedelta = 60 * 60 * 24 * 7,
        soft_fail: bool = False,
        mode: str = "poke",
        exponential_backoff: bool = False,
        max_wait: float | datetime.timedelta | None = None,
        silent_fail: bool = False,
        never_fail: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.poke_interval = _to_seconds(poke_interval, "poke_interval")
        self.timeout = _to_seconds(timeout, "timeout")
        self.soft_fail = soft_fail
        self.mode = mode
        self.exponential_backoff = exponential_backoff
        self.max_wait = _to_seconds(max_wait, "max_wait") if max_wait is not None else None
        self.silent_fail = silent_fail
        self.never_fail = never_fail
        if mode not in self.valid_modes:
            raise AirflowException(
                f"The mode must be one of {list(self.valid_modes)},'{getattr(self, 'dag_id', '')}.{self.task_id}'; "
                f"received '{mode}'."
            )
        if soft_fail and never_fail:
            raise ValueError("soft_fail and never_fail are mutually exclusive, you can not provide both.")

    @property
    def reschedule(self) -> bool:
        """Whether the sensor runs in reschedule mode."""
        return self.mode == "reschedule"

    def poke(self, context: Any) -> bool | PokeReturnValue:
        """Check the condition once."""
        raise AirflowException("Override me.")

    def execute(self, context: Any) -> Any:
        """Poke until done (see the class docstring); returns the PokeReturnValue's xcom_value, if any."""
        ti = context["ti"]
        if self.reschedule:
            started_at = ti.first_try_start_date or _utcnow()

            def run_duration() -> float:
                return (_utcnow() - started_at).total_seconds()

            poke_count = 1 + int(context.get("task_reschedule_count") or 0)
        else:
            started_at = _utcnow()
            started = time.monotonic()

            def run_duration() -> float:
                return time.monotonic() - started

            poke_count = 1
        while True:
            result = self._poke_once(context)
            if result:
                log.info("Success criteria met. Exiting.")
                return result.xcom_value if isinstance(result, PokeReturnValue) else None
            duration = run_duration()
            if duration > self.timeout:
                message = (
                    f"Sensor has timed out; run duration of {duration} seconds exceeds the specified timeout "
                    f"of {self.timeout}."
                )
                if self.soft_fail:
                    raise AirflowSkipException(message)
                raise AirflowSensorTimeout(message)
            interval = self._get_next_poke_interval(started_at, run_duration, poke_count)
            if self.reschedule:
                raise AirflowRescheduleException(_utcnow() + datetime.timedelta(seconds=interval))
            time.sleep(interval)
            poke_count += 1

    def _poke_once(self, context: Any) -> Any:
        try:
            return self.poke(context)
        except (AirflowSensorTimeout, AirflowTaskTimeout, AirflowFailException) as error:
            if self.soft_fail:
                raise AirflowSkipException("Skipping due to soft_fail is set to True.") from error
            if self.never_fail:
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from error
            raise
        except AirflowSkipException:
            raise
        except Exception as error:
            if self.silent_fail:
                log.error("Sensor poke failed (silent_fail is set): %s", error, exc_info=True)
                return False
            if self.never_fail:
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from error
            raise

    def _get_next_poke_interval(
        self, started_at: datetime.datetime, run_duration: Callable[[], float], poke_count: int
    ) -> float:
        """`poke_interval`, or with exponential backoff a doubling interval with a stable jitter, never past
        `max_wait` or the remaining timeout."""
        if not self.exponential_backoff:
            return self.poke_interval
        base = max(self.poke_interval, 1.0) * (2 ** max(poke_count - 1, 0))
        seed = f"{getattr(self, 'dag_id', '')}#{self.task_id}#{started_at}#{poke_count}".encode()
        jitter = int(hashlib.sha1(seed).hexdigest(), 16) % 1000 / 1000
        interval = base * (1 + jitter)
        if self.max_wait is not None:
            interval = min(interval, self.max_wait)
        remaining = self.timeout - run_duration()
        return max(min(interval, remaining), 0.0)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Any) -> Any:
        """Resume after deferral; a trigger timeout is a sensor timeout, and with `soft_fail` a trigger
        failure or timeout skips the task."""
        try:
            return default_resume(self, next_method, next_kwargs or {}, context)
        except TaskDeferralTimeout as error:
            if self.soft_fail:
                raise AirflowSkipException(str(error)) from error
            raise AirflowSensorTimeout(*error.args) from error
        except (AirflowException, TaskDeferralError) as error:
            if self.soft_fail and not isinstance(error, AirflowSkipException):
                raise AirflowSkipException(str(error)) from error
            raise

    def execute_complete(self, context: Any, event: Any = None) -> None:
        """Called when a deferrable sensor's trigger fires: the condition is met."""
        log.info("Trigger fired: %r", event)


def poke_mode_only(cls: type) -> type:
    """Class decorator (Airflow's): the sensor only supports mode="poke"."""
    original_init = cls.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("mode", "poke") != "poke":
            raise ValueError(f"Cannot set mode to '{kwargs['mode']}'. Only 'poke' is acceptable")
        original_init(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[method-assign]
    return cls
