"""Airflow 3 style: TaskFlow with multiple_outputs and dynamic task mapping over upstream XCom."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["taskflow"])
def taskflow_mapping():
    @task(multiple_outputs=True)
    def split() -> dict:
        return {"numbers": [1, 2, 3], "factor": 10}

    @task
    def times(x: int, factor: int) -> int:
        return x * factor

    @task
    def total(values) -> int:
        values = list(values)
        assert values == [10, 20, 30], values
        return sum(values)

    @task
    def make_words() -> list[str]:
        return ["a", "bb", "ccc"]

    @task
    def length(word: str) -> int:
        return len(word)

    @task
    def check(lengths, grand_total, factor):
        assert list(lengths) == [1, 2, 3], lengths
        assert grand_total == 60 and factor == 10

    parts = split()
    products = times.partial(factor=parts["factor"]).expand(x=parts["numbers"])
    lengths = length.expand(word=make_words())
    check(lengths, total(products), parts["factor"])


taskflow_mapping()
