"""LatestOnlyOperator: let downstream tasks run only for the most recent scheduled interval."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pendulum

from tradewind.sdk.operators.branch import BaseBranchOperator

log = logging.getLogger(__name__)


def latest_window(dag: Any, start: Any, end: Any, run_after: Any) -> tuple[Any, Any] | None:
    """The window in which "now" makes this run the latest: from this run's run_after to the next
    scheduled run's, as the DAG's timetable computes it (else one interval length later). None when the
    schedule has no next run."""
    timetable = getattr(dag, "timetable", None)
    if timetable is not None and hasattr(timetable, "next_dagrun_info"):
        try:
            from tradewind.sdk.timetables import DataInterval, TimeRestriction

            info = timetable.next_dagrun_info(
                last_automated_data_interval=DataInterval(start, end),
                restriction=TimeRestriction(earliest=None, latest=None, catchup=True),
            )
        except Exception:
            log.debug("Timetable could not compute the next run; using the interval length", exc_info=True)
        else:
            return None if info is None else (run_after, info.run_after)
    return run_after, run_after + (end - start)


class LatestOnlyOperator(BaseBranchOperator):
    """Skips its direct downstream tasks unless this run is the latest scheduled one: now must fall between
    this run's start time (run_after) and the next scheduled run's (for data-interval schedules: within
    the next run's data interval, Airflow 2's rule). Manually triggered runs always proceed."""

    ui_color = "#e9ffdb"

    def choose_branch(self, context: Mapping[str, Any]) -> str | Iterable[str]:
        """All direct downstream tasks when this is the latest run, none otherwise."""
        dag_run = context["dag_run"]
        downstream = list(getattr(self, "downstream_task_ids", ()))
        if dag_run.external_trigger or dag_run.run_type == "manual":
            log.info("Manually triggered DAG run: allowing execution to proceed.")
            return downstream
        start, end = context["data_interval_start"], context["data_interval_end"]
        if start is None or end is None:
            return downstream
        window = latest_window(context["dag"], start, end, dag_run.run_after or end)
        if window is None:
            log.info("Last scheduled execution: allowing execution to proceed.")
            return downstream
        left, right = window
        now = pendulum.now("UTC")
        log.info("Checking latest only with left_window: %s right_window: %s now: %s", left, right, now)
        if not left < now <= right:
            log.info("Not latest execution, skipping downstream.")
            return []
        log.info("Latest, allowing execution to proceed.")
        return downstream
