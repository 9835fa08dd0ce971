"""Dynamic task mapping in the Airflow 3 style: one task instance per element of an upstream result."""

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["demo", "mapping"],
)
def demo_dynamic_mapping():
    """The number of `measure` instances is only known when `list_files` has run."""

    @task
    def list_files() -> list[str]:
        return ["orders.csv", "customers.csv", "products.csv"]

    @task
    def measure(path: str, bytes_per_char: int) -> int:
        return len(path) * bytes_per_char

    @task
    def total(sizes: list[int]) -> int:
        result = sum(sizes)
        print(f"{len(sizes)} files, {result} bytes")
        return result

    sizes = measure.partial(bytes_per_char=100).expand(path=list_files())
    total(sizes)

    BashOperator.partial(task_id="greet").expand(bash_command=["echo hello", "echo olá", "echo hej"])


demo_dynamic_mapping()
