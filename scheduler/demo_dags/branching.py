"""Branching in the Airflow 2 style: one branch runs, the other is skipped, and the join still runs."""

import pendulum
from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import BranchPythonOperator, PythonOperator


def choose_report(logical_date, **_context) -> str:
    return "weekday_report" if logical_date.weekday() < 5 else "weekend_report"


def write_report(kind: str) -> str:
    print(f"writing the {kind} report")
    return kind


with DAG(
    dag_id="demo_branching",
    description="Pick a report by the day of the week",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["demo", "branching"],
):
    start = EmptyOperator(task_id="start")
    choose = BranchPythonOperator(task_id="choose_report", python_callable=choose_report)
    weekday = PythonOperator(task_id="weekday_report", python_callable=write_report, op_args=["weekday"])
    weekend = PythonOperator(task_id="weekend_report", python_callable=write_report, op_args=["weekend"])
    join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")

    start >> choose >> [weekday, weekend] >> join
