"""A task that takes two minutes: `dags test` interrupted with Ctrl-C must not wait for it."""

import time
from datetime import datetime

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def sleepy():
    @task
    def nap():
        print("sleeping", flush=True)
        time.sleep(120)

    nap()


sleepy()
