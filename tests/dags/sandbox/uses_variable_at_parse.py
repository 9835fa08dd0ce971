"""Reads a Variable at the top level, as many real DAG files do."""

from datetime import datetime

from airflow import DAG
from airflow.models import Variable
from airflow.operators.empty import EmptyOperator

team = Variable.get("team_name")

with DAG(dag_id=f"owned_by_{team}", start_date=datetime(2024, 1, 1), schedule=None):
    EmptyOperator(task_id="noop")
