"""ExternalTaskSensor (wait for tasks, a task group or a whole run of another DAG) and ExternalTaskMarker."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Collection, Iterable
from typing import Any

from tradewind.sdk.baseoperator import BaseOperator
from tradewind.sdk.exceptions import AirflowException, AirflowSkipException
from tradewind.sdk.execution import determine_kwargs, get_client
from tradewind.sdk.sensors.base import BaseSensorOperator

log = logging.getLogger(__name__)

TASK_STATES = (
    "none",
    "scheduled",
    "queued",
    "running",
    "success",
    "failed",
    "up_for_retry",
    "up_for_reschedule",
    "upstream_failed",
    "skipped",
    "removed",
    "deferred",
    "restarting",
)
DAG_RUN_STATES = ("queued", "running", "success", "failed")


def _states(values: Iterable[Any] | None) -> list[str]:
    return [str(getattr(value, "value", value)) for value in values or []]


class ExternalTaskSensor(BaseSensorOperator):
    """Waits until, for the run(s) of `external_dag_id` at this run's logical date (shifted by
    `execution_delta` or chosen by `execution_date_fn`), the external task(s) / task group / DAG run are in
    `allowed_states`. Any in `failed_states` fails the task (skips it with soft_fail); any in
    `skipped_states` skips it. `deferrable` waits by poking; `check_existence` is not checked."""

    template_fields: Collection[str] = (
        "external_dag_id",
        "external_task_id",
        "external_task_ids",
        "external_task_group_id",
    )
    ui_color = "#4db7db"

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str | None = None,
        external_task_ids: Collection[str] | None = None,
        external_task_group_id: str | None = None,
        allowed_states: Iterable[str] | None = None,
        skipped_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        execution_delta: datetime.timedelta | None = None,
        execution_date_fn: Callable | None = None,
        check_existence: bool = False,
        poll_interval: float = 2.0,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.allowed_states = _states(allowed_states) or ["success"]
        self.skipped_states = _states(skipped_states)
        self.failed_states = _states(failed_states)
        total = set(self.allowed_states) | set(self.skipped_states) | set(self.failed_states)
        if len(total) != len(self.allowed_states) + len(self.skipped_states) + len(self.failed_states):
            raise AirflowException(
                "Duplicate values provided across allowed_states, skipped_states and failed_states."
            )
        if external_task_id is not None and external_task_ids is not None:
            raise ValueError(
                "Only one of `external_task_id` or `external_task_ids` may be provided to ExternalTaskSensor; "
                "not both."
            )
        if external_task_id is not None:
            external_task_ids = [external_task_id]
        if external_task_group_id is not None and external_task_ids is not None:
            raise ValueError(
                "Only one of `external_task_group_id` or `external_task_ids` may be provided to "
                "ExternalTaskSensor; not both."
            )
        valid = TASK_STATES if (external_task_ids or external_task_group_id) else DAG_RUN_STATES
        if not total <= set(valid):
            raise ValueError(
                f"Valid values for `allowed_states`, `skipped_states` and `failed_states` are: {list(valid)}"
            )
        if execution_delta is not None and execution_date_fn is not None:
            raise ValueError(
                "Only one of `execution_delta` or `execution_date_fn` may be provided to ExternalTaskSensor; "
                "not both."
            )
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.external_task_ids = list(external_task_ids) if external_task_ids is not None else None
        self.external_task_group_id = external_task_group_id
        self.execution_delta = execution_delta
        self.execution_date_fn = execution_date_fn
        self.check_existence = check_existence
        self.poll_interval = poll_interval
        self.deferrable = deferrable

    def _dates_to_check(self, context: Any) -> list[datetime.datetime]:
        logical_date = context["logical_date"]
        if self.execution_delta is not None:
            dates: Any = logical_date - self.execution_delta
        elif self.execution_date_fn is not None:
            available = {
                key: value for key, value in context.items() if key not in {"execution_date", "logical_date"}
            }
            available["context"] = context
            kwargs = determine_kwargs(self.execution_date_fn, [logical_date], available)
            dates = self.execution_date_fn(logical_date, **kwargs)
        else:
            dates = logical_date
        return list(dates) if isinstance(dates, list | tuple) else [dates]

    def get_count(self, dates: list[datetime.datetime], states: list[str]) -> float:
        """How many of the watched things are in `states`, normalised so that "all of them, for every date"
        equals the number of dates (Airflow's rule)."""
        client = get_client()
        logical_dates = [moment.isoformat() for moment in dates]
        if self.external_task_ids:
            count = client.count_task_states(
                dag_id=self.external_dag_id,
                task_ids=list(self.external_task_ids),
                task_group_id=None,
                logical_dates=logical_dates,
                states=states,
            )
            return count / len(self.external_task_ids)
        if self.external_task_group_id:
            count = client.count_task_states(
                dag_id=self.external_dag_id,
                task_ids=None,
                task_group_id=self.external_task_group_id,
                logical_dates=logical_dates,
                states=states,
            )
            total = client.count_task_states(
                dag_id=self.external_dag_id,
                task_ids=None,
                task_group_id=self.external_task_group_id,
                logical_dates=logical_dates,
                states=list(TASK_STATES),
            )
            runs = client.count_dag_runs(
                dag_id=self.external_dag_id, logical_dates=logical_dates, states=list(DAG_RUN_STATES)
            )
            if not total or not runs:
                return 0
            return count / (total / runs)
        return client.count_dag_runs(dag_id=self.external_dag_id, logical_dates=logical_dates, states=states)

    def _what(self) -> str:
        if self.external_task_ids:
            return f"Some of the external tasks {self.external_task_ids} in DAG {self.external_dag_id}"
        if self.external_task_group_id:
            return f"The external task_group '{self.external_task_group_id}' in DAG '{self.external_dag_id}'"
        return f"The external DAG {self.external_dag_id}"

    def poke(self, context: Any) -> bool:
        """Check the external states once."""
        dates = self._dates_to_check(context)
        log.info(
            "Poking for %s on %s ... ",
            self.external_task_ids or self.external_task_group_id or self.external_dag_id,
            ", ".join(moment.isoformat() for moment in dates),
        )
        if self.failed_states and self.get_count(dates, self.failed_states) > 0:
            message = f"{self._what()} failed."
            if self.soft_fail:
                raise AirflowSkipException(f"{message} Skipping due to soft_fail.")
            raise AirflowException(message)
        if self.skipped_states and self.get_count(dates, self.skipped_states) > 0:
            raise AirflowSkipException(f"{self._what()} reached a skipped state. Skipping.")
        return self.get_count(dates, self.allowed_states) == len(dates)


class ExternalTaskMarker(BaseOperator):
    """Marks a task in another DAG as dependent on this one (used when clearing); does nothing when run."""

    template_fields: Collection[str] = ("external_dag_id", "external_task_id", "logical_date")
    ui_color = "#4db7db"

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str,
        logical_date: str | datetime.datetime | None = "{{ logical_date.isoformat() }}",
        execution_date: str | datetime.datetime | None = None,
        recursion_depth: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        value = execution_date if execution_date is not None else logical_date
        if isinstance(value, datetime.datetime):
            value = value.isoformat()
        elif value is not None and not isinstance(value, str):
            raise TypeError(f"Expected str or datetime.datetime type for logical_date. Got {type(value)}")
        self.logical_date = value
        if recursion_depth <= 0:
            raise ValueError("recursion_depth should be a positive integer")
        self.recursion_depth = recursion_depth

    @property
    def execution_date(self) -> Any:
        """Airflow 2's name of `logical_date`."""
        return self.logical_date

    def execute(self, context: Any) -> None:
        """Nothing to do at run time."""
