"""TaskFlow in the Airflow 3 style: plain Python functions whose return values travel as XCom."""

import pendulum
from airflow.sdk import dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["demo", "taskflow"],
)
def demo_taskflow_xcom():
    """Orders are extracted, summarised (two XCom values from one task) and reported."""

    @task
    def extract() -> dict:
        return {"orders": [{"id": 1, "amount": 30.5}, {"id": 2, "amount": 12.0}, {"id": 3, "amount": 57.5}]}

    @task(multiple_outputs=True)
    def summarise(data: dict) -> dict:
        amounts = [order["amount"] for order in data["orders"]]
        return {"total": sum(amounts), "count": len(amounts)}

    @task
    def report(total: float, count: int) -> str:
        line = f"{count} orders, {total:.2f} in total, {total / count:.2f} on average"
        print(line)
        return line

    summary = summarise(extract())
    report(summary["total"], summary["count"])


demo_taskflow_xcom()
