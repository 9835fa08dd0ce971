"""The one good DAG among bad files: it still runs."""

from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator

with DAG("good", start_date=datetime(2024, 1, 1), schedule=None) as dag:
    PythonOperator(task_id="compute", python_callable=lambda: 6 * 7) >> BashOperator(
        task_id="report", bash_command="echo {{ ti.xcom_pull(task_ids='compute') }}"
    )
