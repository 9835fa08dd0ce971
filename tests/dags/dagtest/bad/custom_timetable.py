"""A DAG with a user-defined Timetable class, which Airflow accepts only when a plugin registers it."""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.timetables.base import DagRunInfo, DataInterval, Timetable


class EveryDay(Timetable):
    def infer_manual_data_interval(self, run_after):
        return DataInterval(start=run_after - timedelta(days=1), end=run_after)

    def next_dagrun_info(self, *, last_automated_data_interval, restriction):
        start = last_automated_data_interval.end if last_automated_data_interval else restriction.earliest
        return DagRunInfo.interval(start=start, end=start + timedelta(days=1))


with DAG("custom_timetable", start_date=datetime(2024, 1, 1), schedule=EveryDay()):
    EmptyOperator(task_id="run_this")
