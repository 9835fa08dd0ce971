"""Airflow 3 style: trigger rules downstream of a failed and a successful task."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TriggerRule

with DAG("trigger_rules", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    failing = BashOperator(task_id="failing", bash_command="exit 3", retries=0)
    fine = EmptyOperator(task_id="fine")
    rules = {
        "all_success": TriggerRule.ALL_SUCCESS,
        "all_done": TriggerRule.ALL_DONE,
        "one_failed": TriggerRule.ONE_FAILED,
        "one_success": TriggerRule.ONE_SUCCESS,
        "all_failed": TriggerRule.ALL_FAILED,
        "none_failed": TriggerRule.NONE_FAILED,
        "always": TriggerRule.ALWAYS,
    }
    for name, rule in rules.items():
        [failing, fine] >> EmptyOperator(task_id=name, trigger_rule=rule)
