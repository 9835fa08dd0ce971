"""A DAG-level callback, run sandboxed once its run finished, sees the finished run (its final state and end
date) and a finished task instance, as Airflow builds the callback's context after setting them."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from scheduler import services
from scheduler.models import DagRun, TaskInstance
from scheduler.states import DagRunState, TIState
from tests.runner.conftest import queue, start_run
from workers import runner

pytestmark = pytest.mark.django_db(transaction=True)

DAG_FILE = """
import json
from datetime import datetime
from tradewind.sdk import DAG
from tradewind.sdk.operators.python import PythonOperator

def record(context):
    dag_run = context["dag_run"]
    seen = {{
        "state": dag_run.state,
        "get_state": dag_run.get_state(),
        "end_date": dag_run.end_date.isoformat() if dag_run.end_date else None,
        "ti": [context["ti"].task_id, context["ti"].state, context["ti"].end_date is not None],
    }}
    with open("{out_dir}/callback.json", "w") as handle:
        json.dump(seen, handle)

def work(outcome):
    if outcome == "fail":
        raise ValueError("boom")

with DAG("job", schedule=None, start_date=datetime(2024, 1, 1),
         on_success_callback=record, on_failure_callback=record):
    PythonOperator(task_id="work", python_callable=work, op_args=["{{{{ dag_run.conf['outcome'] }}}}"])
"""


@pytest.mark.parametrize(
    ("outcome", "state"), [("succeed", DagRunState.SUCCESS), ("fail", DagRunState.FAILED)]
)
def test_a_dag_callback_sees_the_runs_final_state_and_end_date(tenant, upload, out_dir, outcome, state):
    upload(tenant, {"job.py": DAG_FILE.format(out_dir=out_dir)})
    run = start_run(tenant, "job", conf={"outcome": outcome})
    ti = queue(run, "work")
    runner.run_task_instance(tenant_id=tenant.pk, ti_id=ti.pk, try_number=ti.try_number)
    assert TaskInstance.objects.get(pk=ti.pk).state in (TIState.SUCCESS, TIState.FAILED)
    services.schedule_run(DagRun.objects.get(pk=run.pk))
    run.refresh_from_db()
    assert run.state == state and run.end_date is not None

    result = runner.run_dag_callbacks(tenant_id=tenant.pk, dag_run_id=run.pk)

    assert result is not None and result["error"] is None
    seen = json.loads((out_dir / "callback.json").read_text())
    # Its ti is the run's last task instance, finished too (Airflow's: the failed one for on_failure).
    ti_state = TIState.SUCCESS if outcome == "succeed" else TIState.FAILED
    assert seen == {
        "state": state,
        "get_state": state,
        "end_date": seen["end_date"],
        "ti": ["work", ti_state, True],
    }
    assert datetime.fromisoformat(seen["end_date"]) == run.end_date
