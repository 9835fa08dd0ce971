"""A task that prints a connection's password and a sensitive variable: its log must show *** instead."""

from datetime import datetime

from airflow.hooks.base import BaseHook
from airflow.models import Variable
from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def masking():
    @task(retries=0)
    def leak():
        conn = BaseHook.get_connection("warehouse")
        print(f"connecting as {conn.login} with password {conn.password}")
        print(f"api key is {Variable.get('partner_api_key')}")
        raise ValueError(f"login refused for {conn.login} with password {conn.password}")

    leak()


masking()
