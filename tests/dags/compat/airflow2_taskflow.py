"""Airflow 2's TaskFlow tutorial (tutorial_taskflow_api) with its imports: airflow.decorators, days_ago."""

import json

from airflow.decorators import dag, task
from airflow.utils.dates import days_ago


@dag(schedule_interval=None, start_date=days_ago(2), catchup=False, tags=["example"])
def tutorial_taskflow_api():
    """### TaskFlow API Tutorial Documentation"""

    @task()
    def extract():
        data_string = '{"1001": 301.27, "1002": 433.21, "1003": 502.22}'
        return json.loads(data_string)

    @task(multiple_outputs=True)
    def transform(order_data_dict: dict):
        total_order_value = 0
        for value in order_data_dict.values():
            total_order_value += value
        return {"total_order_value": total_order_value}

    @task()
    def load(total_order_value: float):
        print(f"Total order value is: {total_order_value:.2f}")
        return round(total_order_value, 2)

    order_data = extract()
    order_summary = transform(order_data)
    load(order_summary["total_order_value"])


tutorial_dag = tutorial_taskflow_api()
