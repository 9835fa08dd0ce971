"""TriggerDagRunOperator: start a run of another DAG (through the parent), optionally waiting for it."""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Collection, Sequence
from typing import Any

from tradewind.sdk.baseoperator import BaseOperator
from tradewind.sdk.context import parse_datetime
from tradewind.sdk.exceptions import AirflowException, AirflowSkipException, DagRunAlreadyExists
from tradewind.sdk.execution import get_client

log = logging.getLogger(__name__)

XCOM_RUN_ID = "trigger_run_id"
XCOM_LOGICAL_DATE_ISO = "trigger_logical_date_iso"
XCOM_EXECUTION_DATE_ISO = "trigger_execution_date_iso"


class TriggerDagRunLink:
    """Airflow's "Triggered DAG" extra link (shown by the UI; nothing to do at run time)."""

    name = "Triggered DAG"


class TriggerDagRunOperator(BaseOperator):
    """Triggers a run of `trigger_dag_id` with `conf`, optionally `wait_for_completion` (polling every
    `poke_interval` seconds until the run's state is in `allowed_states`, or failing when it reaches one of
    `failed_states`). Pushes the new run's id as XCom "trigger_run_id". `deferrable` waits by polling too."""

    template_fields: Collection[str] = ("trigger_dag_id", "trigger_run_id", "logical_date", "conf")
    template_fields_renderers = {"conf": "py"}
    ui_color = "#ffefeb"
    operator_extra_links = (TriggerDagRunLink(),)

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        trigger_run_id: str | None = None,
        conf: dict | None = None,
        logical_date: str | datetime.datetime | None = None,
        execution_date: str | datetime.datetime | None = None,
        reset_dag_run: bool = False,
        wait_for_completion: bool = False,
        poke_interval: float = 60,
        allowed_states: Sequence[str] | None = None,
        failed_states: Sequence[str] | None = None,
        skip_when_already_exists: bool = False,
        fail_when_dag_is_paused: bool = False,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf = conf
        self.logical_date = logical_date if logical_date is not None else execution_date
        self.reset_dag_run = reset_dag_run
        self.wait_for_completion = wait_for_completion
        self.poke_interval = poke_interval
        self.allowed_states = [str(state) for state in (allowed_states or ["success"])]
        self.failed_states = [
            str(state) for state in (failed_states if failed_states is not None else ["failed"])
        ]
        self.skip_when_already_exists = skip_when_already_exists
        self.fail_when_dag_is_paused = fail_when_dag_is_paused
        self.deferrable = deferrable
        if self.logical_date is not None and not isinstance(self.logical_date, str | datetime.datetime):
            raise TypeError(
                f"Expected str or datetime.datetime type for logical_date. Got {type(self.logical_date)}"
            )

    @property
    def execution_date(self) -> Any:
        """Airflow 2's name of `logical_date`."""
        return self.logical_date

    def execute(self, context: Any) -> None:
        """Trigger the run, push its id, and wait for it when asked to."""
        logical_date = parse_datetime(self.logical_date) if self.logical_date else None
        conf = dict(self.conf or {})
        try:
            json.dumps(conf)
        except (TypeError, ValueError):
            raise AirflowException("conf parameter should be JSON Serializable") from None
        run_id = self.trigger_run_id or None
        result = get_client().trigger_dag_run(
            dag_id=self.trigger_dag_id,
            run_id=run_id,
            conf=conf,
            logical_date=logical_date.isoformat() if logical_date else None,
            reset_dag_run=self.reset_dag_run,
        )
        if result.get("already_exists") and not self.reset_dag_run:
            if self.skip_when_already_exists:
                raise AirflowSkipException(
                    f"DAG run {result.get('run_id')} of {self.trigger_dag_id} already exists; skipping."
                )
            raise DagRunAlreadyExists(run_id=result.get("run_id"))
        run_id = result["run_id"]
        log.info("Triggered DAG %s run %s", self.trigger_dag_id, run_id)
        ti = context["ti"]
        ti.xcom_push(key=XCOM_RUN_ID, value=run_id)
        triggered_date = result.get("logical_date") or (logical_date.isoformat() if logical_date else None)
        if triggered_date:
            ti.xcom_push(key=XCOM_LOGICAL_DATE_ISO, value=triggered_date)
            ti.xcom_push(key=XCOM_EXECUTION_DATE_ISO, value=triggered_date)
        if self.wait_for_completion:
            self._wait(run_id, result.get("state"))

    def _wait(self, run_id: str, state: str | None) -> None:
        client = get_client()
        while True:
            if state in self.failed_states:
                raise AirflowException(f"{self.trigger_dag_id} failed with failed states {state}")
            if state in self.allowed_states:
                log.info("%s finished with allowed state %s", self.trigger_dag_id, state)
                return
            log.info(
                "Waiting for %s on %s to become allowed state %s ...",
                self.trigger_dag_id,
                run_id,
                self.allowed_states,
            )
            time.sleep(self.poke_interval)
            state = client.get_dag_run_state(dag_id=self.trigger_dag_id, run_id=run_id)
