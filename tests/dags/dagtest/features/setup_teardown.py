"""Airflow 3 style: setup and teardown tasks. The work fails; the teardown still runs; the run fails."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, setup, task, teardown

with DAG("setup_teardown", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):

    @setup
    def create_cluster() -> str:
        return "cluster-1"

    @teardown
    def delete_cluster(name: str) -> None:
        print(f"deleting {name}")

    @task(retries=0)
    def work(name: str) -> None:
        raise RuntimeError(f"the job on {name} broke")

    cluster = create_cluster()
    after = BashOperator(task_id="after_work", bash_command="echo never runs")
    work(cluster) >> after >> delete_cluster(cluster)
