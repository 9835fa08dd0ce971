"""A DAG written for Airflow 3 (airflow.sdk)."""

import pendulum
from airflow.sdk import dag, task


@dag(schedule="@hourly", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def sandbox_good_sdk():
    @task
    def hello():
        print("hello")

    hello()


sandbox_good_sdk()
