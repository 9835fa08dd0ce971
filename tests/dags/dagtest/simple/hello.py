"""The smallest useful DAG: two TaskFlow tasks passing a value (Airflow 3 style)."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def hello():
    @task
    def greet() -> str:
        return "hello"

    @task
    def shout(word: str) -> str:
        print(word.upper())
        return word.upper()

    shout(greet())


hello()
