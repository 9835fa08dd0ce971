"""Airflow 2 teaching pipeline: DAGs generated in a loop and registered through globals()."""

from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator

for source in ("alpha", "beta", "gamma"):
    dag_id = f"generated_{source}"
    dag = DAG(dag_id, start_date=datetime(2024, 1, 1), schedule_interval=None, catchup=False)
    start = EmptyOperator(task_id="start", dag=dag)
    pull = BashOperator(task_id=f"pull_{source}", bash_command=f"echo pulling {source}", dag=dag)
    start >> pull
    globals()[dag_id] = dag
