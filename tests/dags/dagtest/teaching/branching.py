"""Airflow 2 teaching pipeline: branching (BranchPythonOperator) and short-circuiting."""

from datetime import datetime

from airflow import DAG
from airflow.operators.dummy import DummyOperator
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import BranchPythonOperator, ShortCircuitOperator


def choose(**context):
    return "fast_path" if context["params"]["fast"] else "slow_path"


with DAG(
    "branching",
    start_date=datetime(2024, 1, 1),
    schedule_interval=None,
    params={"fast": True},
    catchup=False,
) as dag:
    branch = BranchPythonOperator(task_id="choose", python_callable=choose)
    fast = EmptyOperator(task_id="fast_path")
    slow = EmptyOperator(task_id="slow_path")
    after_slow = DummyOperator(task_id="after_slow")
    join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
    branch >> [fast, slow]
    slow >> after_slow
    [fast, after_slow] >> join

    gate = ShortCircuitOperator(task_id="gate", python_callable=lambda: False)
    gated = EmptyOperator(task_id="gated")
    after_gated = EmptyOperator(task_id="after_gated")
    join >> gate >> gated >> after_gated
