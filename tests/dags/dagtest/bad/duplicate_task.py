"""A DAG defining the same task id twice."""

from datetime import datetime

from airflow import DAG
from airflow.operators.empty import EmptyOperator

with DAG("duplicate_task", start_date=datetime(2024, 1, 1), schedule=None) as dag:
    EmptyOperator(task_id="same")
    EmptyOperator(task_id="same")
