"""Task groups in the Airflow 2 style: nested groups, tasks made in a loop, group-to-group dependencies."""

import pendulum
from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator
from airflow.utils.task_group import TaskGroup

SOURCES = ["orders", "customers", "products"]


def extract(source: str) -> int:
    print(f"extracting {source}")
    return len(source)


def check(rule: str) -> None:
    print(f"quality check passed: {rule}")


with DAG(
    dag_id="demo_task_groups",
    description="Extract several sources, then transform with nested quality checks",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["demo", "task-groups"],
):
    start = EmptyOperator(task_id="start")

    with TaskGroup("extract", tooltip="One extract task per source") as extract_group:
        for source in SOURCES:
            PythonOperator(task_id=f"extract_{source}", python_callable=extract, op_args=[source])

    with TaskGroup("transform") as transform_group:
        clean = EmptyOperator(task_id="clean")
        with TaskGroup("quality") as quality:
            for rule in ("not_null", "unique_ids"):
                PythonOperator(task_id=rule, python_callable=check, op_args=[rule])
        publish = EmptyOperator(task_id="publish")
        clean >> quality >> publish

    end = EmptyOperator(task_id="end")

    start >> extract_group >> transform_group >> end
