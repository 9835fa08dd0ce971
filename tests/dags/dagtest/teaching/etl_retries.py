"""Airflow 2 teaching pipeline: an ETL chain of PythonOperator and BashOperator with default_args and retries.

`transform` fails on its first try and succeeds on the retry (retry_delay is tiny); `check` asserts what
flowed through XCom, on which try `transform` succeeded, and what the templated bash command rendered.
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator

default_args = {
    "owner": "data-team",
    "retries": 2,
    "retry_delay": timedelta(milliseconds=200),
}


def extract():
    return {"orders": [3, 4, 5]}


def transform(ti, **context):
    if ti.try_number == 1:
        raise RuntimeError("the warehouse is not ready yet (this task fails on its first try)")
    ti.xcom_push(key="succeeded_on_try", value=ti.try_number)
    orders = ti.xcom_pull(task_ids="extract")["orders"]
    return sum(orders)


def check(ti, **context):
    assert ti.xcom_pull(task_ids="transform") == 12, ti.xcom_pull(task_ids="transform")
    loaded = ti.xcom_pull(task_ids="load")
    assert loaded == "loaded 12 rows for 2024-03-15", loaded
    assert ti.xcom_pull(task_ids="transform", key="succeeded_on_try") == 2


with DAG(
    dag_id="etl_retries",
    default_args=default_args,
    start_date=datetime(2024, 1, 1),
    schedule_interval="@daily",
    catchup=False,
    tags=["teaching"],
) as dag:
    extract_task = PythonOperator(task_id="extract", python_callable=extract)
    transform_task = PythonOperator(task_id="transform", python_callable=transform)
    load = BashOperator(
        task_id="load",
        bash_command="echo loaded {{ ti.xcom_pull(task_ids='transform') }} rows for {{ ds }}",
    )
    verify = PythonOperator(task_id="check", python_callable=check, retries=0)

    extract_task >> transform_task >> load >> verify
