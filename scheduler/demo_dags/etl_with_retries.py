"""An ETL chain in the classic Airflow 2 style: default_args with retries, PythonOperator and BashOperator,
XCom between the steps and Jinja in the bash commands.

`load` fails on its first try on purpose (a busy warehouse) and succeeds on the retry two seconds later.
"""

from datetime import timedelta

import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator

default_args = {
    "owner": "data-team",
    "retries": 2,
    "retry_delay": timedelta(seconds=2),
}


def extract() -> list[dict]:
    """Pretend to read today's readings from a source system."""
    return [
        {"city": "Lisbon", "temp_c": 21.5},
        {"city": "Oslo", "temp_c": 4.0},
        {"city": "Nairobi", "temp_c": 25.0},
    ]


def transform(ti) -> list[dict]:
    rows = ti.xcom_pull(task_ids="extract")
    return [{**row, "temp_f": round(row["temp_c"] * 9 / 5 + 32, 1)} for row in rows]


def load(ti) -> int:
    if ti.try_number < 2:
        raise RuntimeError("the warehouse is busy (a deliberate first-try failure: watch the retry)")
    rows = ti.xcom_pull(task_ids="transform")
    for row in rows:
        print(f"loading {row['city']}: {row['temp_f']} F")
    return len(rows)


with DAG(
    dag_id="demo_etl_with_retries",
    description="Extract, transform and load with retries",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args,
    tags=["demo", "etl"],
) as dag:
    check_source = BashOperator(
        task_id="check_source",
        bash_command='echo "source is reachable for {{ ds }} (run {{ run_id }})"',
    )
    extract_task = PythonOperator(task_id="extract", python_callable=extract)
    transform_task = PythonOperator(task_id="transform", python_callable=transform)
    load_task = PythonOperator(task_id="load", python_callable=load)
    report = BashOperator(
        task_id="report",
        bash_command="echo \"loaded {{ ti.xcom_pull(task_ids='load') }} rows on {{ ds }}\"",
    )

    check_source >> extract_task >> transform_task >> load_task >> report
