"""A TaskFlow DAG in native Tradewind style: @dag, @task, mapping, a task group and a label."""

from datetime import datetime, timedelta

from tradewind.sdk import Label, Param, dag, task, task_group
from tradewind.sdk.operators.bash import BashOperator
from tradewind.sdk.operators.python import PythonOperator


@dag(
    schedule="0 6 * * *",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={"threshold": Param(10, type="integer", minimum=0)},
    tags={"etl", "example", "daily"},
)
def taskflow_etl():
    @task
    def extract() -> list[int]:
        return [1, 2, 3]

    @task
    def square(value: int) -> int:
        return value * value

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @task_group
    def report(amount):
        BashOperator(task_id="echo", bash_command=f"echo {amount}")

    def announce():
        return "done"

    squares = square.expand(value=extract())
    summed = total(squares)
    report(summed) >> Label("then") >> PythonOperator(task_id="announce", python_callable=announce)


taskflow_etl()
