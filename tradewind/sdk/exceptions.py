"""Airflow's exceptions, under Airflow's names, with Airflow's constructor signatures.

Where Airflow 2 raises `AirflowException` and Airflow 3 raises a builtin (`TypeError`, `ValueError`) for
the same mistake, the class here derives from both so either `except` clause in a DAG file still works.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any


class AirflowException(Exception):
    """Base class of every Airflow error; `status_code` is what an HTTP API would answer."""

    status_code = HTTPStatus.INTERNAL_SERVER_ERROR


class AirflowBadRequest(AirflowException):
    """A request the caller got wrong (HTTP 400)."""

    status_code = HTTPStatus.BAD_REQUEST


class AirflowNotFoundException(AirflowException):
    """A requested object does not exist (HTTP 404)."""

    status_code = HTTPStatus.NOT_FOUND


class AirflowConfigException(AirflowException):
    """A configuration value is missing or wrong."""


class AirflowTypeError(AirflowException, TypeError):
    """A wrong call that Airflow 2 reports as AirflowException and Airflow 3 as TypeError."""


class AirflowValueError(AirflowException, ValueError):
    """A wrong value that Airflow 2 reports as AirflowException and Airflow 3 as ValueError."""


class AirflowSensorTimeout(AirflowException):
    """A sensor ran out of time; the task fails without retrying."""


class AirflowRescheduleException(AirflowException):
    """Raised by a sensor in reschedule mode: run this task again at `reschedule_date`."""

    def __init__(self, reschedule_date: datetime.datetime) -> None:
        super().__init__()
        self.reschedule_date = reschedule_date

    def serialize(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        """(classpath, args, kwargs), as Airflow serializes it."""
        return f"{type(self).__module__}.{type(self).__name__}", (), {"reschedule_date": self.reschedule_date}


class AirflowSkipException(AirflowException):
    """Raised inside a task to mark it skipped."""


class AirflowFailException(AirflowException):
    """Raised inside a task to fail it without retrying."""


class AirflowOptionalProviderFeatureException(AirflowException):
    """An optional provider feature is not available."""


class AirflowTaskTimeout(BaseException):
    """The task ran longer than its execution_timeout (a BaseException, so `except Exception` misses it)."""


class AirflowTaskTerminated(BaseException):
    """The task process was told to stop."""


class AirflowWebServerTimeout(AirflowException):
    """The web server did not answer in time."""


class AirflowDagCycleException(AirflowException):
    """The DAG's dependencies contain a cycle."""


class AirflowDagDuplicatedIdException(AirflowException):
    """Two files define a DAG with the same dag_id."""

    def __init__(self, dag_id: str, incoming: str, existing: str) -> None:
        super().__init__(dag_id, incoming, existing)
        self.dag_id = dag_id
        self.incoming = incoming
        self.existing = existing

    def __str__(self) -> str:
        return f"Ignoring DAG {self.dag_id} from {self.incoming} - also found in {self.existing}"


class AirflowDagInconsistent(AirflowException):
    """The DAG's attributes contradict each other."""


class AirflowClusterPolicyViolation(AirflowException):
    """A cluster policy rejected the DAG or task."""


class AirflowClusterPolicySkipDag(AirflowException):
    """A cluster policy asked to skip the DAG."""


class AirflowClusterPolicyError(AirflowException):
    """A cluster policy itself failed."""


class AirflowTimetableInvalid(AirflowException):
    """The DAG's schedule cannot be used (bad cron expression, wrong type...)."""


class DagNotFound(AirflowNotFoundException):
    """No DAG with that id."""


class DagCodeNotFound(AirflowNotFoundException):
    """No code stored for that DAG."""


class DagRunNotFound(AirflowNotFoundException):
    """No DAG run with that id."""


class DagRunAlreadyExists(AirflowBadRequest):
    """A DAG run with that run_id or logical date already exists."""

    def __init__(self, dag_run: Any = None, execution_date: Any = None, run_id: str | None = None) -> None:
        super().__init__(
            f"A DAG Run already exists for DAG {getattr(dag_run, 'dag_id', '?')} with run id {run_id}"
        )
        self.dag_run = dag_run
        self.execution_date = execution_date
        self.run_id = run_id


class DagFileExists(AirflowBadRequest):
    """A DAG file with that name already exists."""


class FailStopDagInvalidTriggerRule(AirflowException):
    """A fail_fast (fail_stop) DAG may only hold tasks with the all_success or all_done_setup_success rule."""

    _allowed_rules = ("all_success", "all_done_setup_success")

    @classmethod
    def check(cls, *, fail_stop: bool, trigger_rule: str) -> None:
        """Raise if `trigger_rule` is not allowed in a DAG with fail_stop / fail_fast set."""
        if fail_stop and str(trigger_rule) not in cls._allowed_rules:
            raise cls()

    def __str__(self) -> str:
        return f"A 'fail-stop' dag can only have {', '.join(self._allowed_rules)} trigger rule"


class DuplicateTaskIdFound(AirflowException):
    """A task (or task group) id is used twice in one DAG."""


class TaskAlreadyInTaskGroup(AirflowException):
    """A task cannot be moved into a second task group."""

    def __init__(self, task_id: str, existing_group_id: str | None, new_group_id: str) -> None:
        super().__init__(task_id, new_group_id)
        self.task_id = task_id
        self.existing_group_id = existing_group_id
        self.new_group_id = new_group_id

    def __str__(self) -> str:
        existing = (
            "the DAG's root group" if self.existing_group_id is None else f"group {self.existing_group_id!r}"
        )
        return f"cannot add {self.task_id!r} to {self.new_group_id!r} (already in {existing})"


class SerializationError(AirflowException):
    """A DAG could not be serialized."""


class ParamValidationError(AirflowException):
    """A Param's value does not match its schema, or a required value is missing."""


class TaskNotFound(AirflowNotFoundException):
    """No task with that id in the DAG."""


class TaskInstanceNotFound(AirflowNotFoundException):
    """No such task instance."""


class PoolNotFound(AirflowNotFoundException):
    """No pool with that name."""


class NoAvailablePoolSlot(AirflowException):
    """The pool has no open slot."""


class DagConcurrencyLimitReached(AirflowException):
    """The DAG's max_active_tasks is reached."""


class TaskConcurrencyLimitReached(AirflowException):
    """The task's max_active_tis_per_dag is reached."""


class BackfillUnfinished(AirflowException):
    """A backfill ended with unfinished task instances."""

    def __init__(self, message: str, ti_status: Any = None) -> None:
        super().__init__(message)
        self.ti_status = ti_status


class FileSyntaxError:
    """A syntax error found in a DAG-ignore file (Airflow's NamedTuple-like record)."""

    def __init__(self, line_no: int | None, message: str) -> None:
        self.line_no = line_no
        self.message = message

    def __str__(self) -> str:
        return f"{self.message}. Line number: {self.line_no},"


class AirflowFileParseException(AirflowException):
    """A file could not be parsed."""

    def __init__(self, msg: str, file_path: str, parse_errors: list[FileSyntaxError]) -> None:
        super().__init__(msg)
        self.msg = msg
        self.file_path = file_path
        self.parse_errors = parse_errors


class ConnectionNotUnique(AirflowException):
    """More than one connection matches the id."""


class TaskDeferred(BaseException):
    """Raised by a task to hand its wait to a trigger and resume in `method_name` later.

    A BaseException so task code catching `Exception` does not swallow it.
    """

    def __init__(
        self,
        *,
        trigger: Any,
        method_name: str,
        kwargs: dict[str, Any] | None = None,
        timeout: datetime.timedelta | float | int | None = None,
    ) -> None:
        super().__init__()
        self.trigger = trigger
        self.method_name = method_name
        self.kwargs = kwargs
        if timeout is not None and not isinstance(timeout, datetime.timedelta):
            if not isinstance(timeout, int | float):
                raise ValueError("Timeout value must be a timedelta")
            timeout = datetime.timedelta(seconds=timeout)
        self.timeout: datetime.timedelta | None = timeout

    def __repr__(self) -> str:
        return f"<TaskDeferred trigger={self.trigger} method={self.method_name}>"


class TaskDeferralError(AirflowException):
    """Resuming a deferred task failed (the trigger reported an error)."""


class TaskDeferralTimeout(AirflowException):
    """A deferred task's trigger did not fire before its timeout."""


class DownstreamTasksSkipped(AirflowException):
    """Raised by a task (Airflow 3 style) to skip the listed downstream tasks and still succeed."""

    def __init__(self, *, tasks: Sequence[str | tuple[str, int]]) -> None:
        super().__init__(tasks)
        self.tasks = tasks


class XComNotFound(AirflowException):
    """An XCom that a task needs was never pushed."""

    def __init__(self, dag_id: str, task_id: str, key: str) -> None:
        super().__init__()
        self.dag_id = dag_id
        self.task_id = task_id
        self.key = key

    def __str__(self) -> str:
        return f'XComArg result from {self.task_id} at {self.dag_id} with key="{self.key}" is not found!'


class XComForMappingNotPushed(AirflowException):
    """A mapped task's upstream did not push the value to map over."""

    def __str__(self) -> str:
        return "did not push XCom for task mapping"


class UnmappableXComTypePushed(AirflowException):
    """An upstream pushed something that is not a list or dict to map over."""

    def __init__(self, value: Any, *values: Any) -> None:
        super().__init__(value, *values)

    def __str__(self) -> str:
        typename = type(self.args[0]).__qualname__
        for arg in self.args[1:]:
            typename = f"{typename}[{type(arg).__qualname__}]"
        return f"unmappable return type {typename!r}"


class UnmappableXComLengthPushed(AirflowException):
    """An upstream pushed a list longer than the allowed number of mapped tasks."""

    def __init__(self, value: Any, max_length: int) -> None:
        super().__init__(value)
        self.value = value
        self.max_length = max_length

    def __str__(self) -> str:
        return f"unmappable return value length: {len(self.value)} > {self.max_length}"


class UnknownExecutorException(ValueError):
    """The named executor does not exist."""


class DeserializingResultError(ValueError):
    """A stored result could not be deserialized."""


class RemovedInAirflow3Warning(DeprecationWarning):
    """A feature that Airflow 3 removed."""

    deprecated_since: str | None = None


class AirflowProviderDeprecationWarning(DeprecationWarning):
    """A provider feature that is deprecated."""

    deprecated_provider_since: str | None = None


class AirflowRuntimeError(AirflowException):
    """Airflow 3's generic runtime error from the task SDK."""


class NotFullyPopulated(RuntimeError):
    """A mapped task's length cannot be computed yet: some upstream lengths are not known."""

    def __init__(self, missing: set[str]) -> None:
        super().__init__(missing)
        self.missing = missing

    def __str__(self) -> str:
        return f"Failed to populate all mapping metadata; missing: {', '.join(sorted(self.missing))}"
