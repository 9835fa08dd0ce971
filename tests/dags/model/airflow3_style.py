"""An Airflow 3 DAG file, unchanged: the airflow.sdk authoring API."""

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Asset, chain, task

with DAG(
    dag_id="airflow3_sdk",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Berlin"),
):

    @task(outlets=[Asset("s3://bucket/out")])
    def produce():
        return 1

    chain(EmptyOperator(task_id="begin"), produce())
