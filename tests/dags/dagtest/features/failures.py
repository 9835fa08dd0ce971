"""Airflow 3 style: a task failing with AirflowFailException (no retry), a skip, an execution_timeout."""

import time
from datetime import datetime, timedelta

from airflow.exceptions import AirflowFailException, AirflowSkipException
from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def fail_fast():
    @task(retries=3, retry_delay=timedelta(milliseconds=100))
    def give_up(**context):
        with open(f"{context['dag_run'].conf['out_dir']}/fail_fast_tries.txt", "a") as handle:
            handle.write(f"try {context['ti'].try_number}\n")
        raise AirflowFailException("the input is unusable: retrying cannot help")

    @task
    def never():
        return "unreachable"

    give_up() >> never()


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def skipping():
    @task
    def nothing_to_do():
        raise AirflowSkipException("no new files today")

    @task
    def downstream():
        return "unreachable"

    @task(trigger_rule="none_failed")
    def report():
        return "done"

    skipped = nothing_to_do()
    skipped >> downstream()
    skipped >> report()


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def timeouts():
    @task(execution_timeout=timedelta(seconds=1), retries=0)
    def too_slow():
        time.sleep(60)

    too_slow()


fail_fast()
skipping()
timeouts()
