"""A task returning an XCom above the size limit fails with a clear error; a small one is fine."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def xcom_limit():
    @task
    def too_big() -> str:
        return "x" * (2 * 1024 * 1024)

    @task
    def small() -> str:
        return "fits"

    too_big()
    small()


xcom_limit()
