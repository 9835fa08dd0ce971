"""Reaching into another tenant: its XComs read as absent and its DAGs cannot be triggered.

The victim's dag_id, run_id and task_id come in through the run's conf. A DAG of the same tenant can be
triggered (and waited for), as a control.
"""

from datetime import datetime

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def cross_tenant():
    @task
    def peek(**context):
        conf = context["dag_run"].conf
        stolen = context["ti"].xcom_pull(
            dag_id=conf["victim_dag"], run_id=conf["victim_run"], task_ids=conf["victim_task"]
        )
        assert stolen is None, f"read another tenant's XCom: {stolen!r}"

    peek()
    TriggerDagRunOperator(task_id="trigger_other_tenant", trigger_dag_id="{{ dag_run.conf.victim_dag }}")
    TriggerDagRunOperator(
        task_id="trigger_own",
        trigger_dag_id="triggered_target",
        conf={"from": "cross_tenant"},
        wait_for_completion=True,
        poke_interval=0.3,
    )


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def triggered_target():
    @task
    def hello():
        return "triggered"

    hello()


cross_tenant()
triggered_target()
