"""Two DAGs written for Airflow 2: a `with DAG` block and a @dag-decorated function."""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.decorators import dag, task
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator
from airflow.utils.task_group import TaskGroup

with DAG(
    dag_id="sandbox_good_classic",
    start_date=datetime(2024, 1, 1),
    schedule_interval="@daily",
    catchup=False,
    default_args={"owner": "data", "retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["sandbox"],
) as classic:
    start = EmptyOperator(task_id="start")
    with TaskGroup("extract") as extract:
        BashOperator(task_id="pull", bash_command="echo {{ ds }}")
    end = EmptyOperator(task_id="end")
    start >> extract >> end


@dag(dag_id="sandbox_good_decorated", start_date=datetime(2024, 1, 1), schedule=None)
def decorated():
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def total(values):
        return sum(values)

    total(numbers())


decorated()
