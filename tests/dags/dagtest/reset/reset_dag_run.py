"""reset_dag_run on a run that already exists: `dags test` runs both DAGs at the same logical date; the parent
waits until the child's run has succeeded, then triggers the child at that date again with reset_dag_run,
which clears that very run and runs it again (its conf unchanged) instead of replacing it."""

from datetime import datetime
from pathlib import Path

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def reset_parent():
    child_done = ExternalTaskSensor(
        task_id="child_done",
        external_dag_id="reset_child",
        external_task_id=None,
        poke_interval=0.2,
        timeout=60,
    )
    rerun = TriggerDagRunOperator(
        task_id="rerun_child",
        trigger_dag_id="reset_child",
        logical_date="{{ logical_date }}",
        reset_dag_run=True,
        conf={"changed": True},
        wait_for_completion=True,
        poke_interval=0.3,
    )
    child_done >> rerun


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def reset_child():
    @task
    def record(**context):
        conf = context["dag_run"].conf
        with open(Path(conf["out_dir"]) / "reset_child.txt", "a") as out:
            out.write(f"try {context['ti'].try_number} changed={conf.get('changed', False)}\n")

    record()


reset_parent()
reset_child()
