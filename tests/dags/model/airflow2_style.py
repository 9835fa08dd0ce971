"""An Airflow 2 DAG file, unchanged: classic operators, TaskFlow, groups, chain, a Dataset outlet."""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.datasets import Dataset
from airflow.decorators import task
from airflow.models.baseoperator import chain
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator
from airflow.utils.task_group import TaskGroup

default_args = {"owner": "data", "retries": 1, "retry_delay": timedelta(minutes=5)}


def _load(**context):
    return context["ds"]


with DAG(
    dag_id="airflow2_classic",
    default_args=default_args,
    start_date=datetime(2023, 1, 1),
    schedule_interval="@daily",
    tags=["legacy"],
) as dag:
    start = EmptyOperator(task_id="start")
    extract = BashOperator(task_id="extract", bash_command="echo {{ ds }}")

    @task
    def transform(value=None):
        return {"rows": 3}

    with TaskGroup("load_group") as load_group:
        load = PythonOperator(task_id="load", python_callable=_load, outlets=[Dataset("s3://bucket/table")])

    end = EmptyOperator(task_id="end")
    chain(start, extract, transform(extract.output), load_group, end)
