"""Sensors: poke mode, reschedule mode, and deferrable sensors (Airflow 2 and 3 import paths)."""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sensors.bash import BashSensor
from airflow.sensors.python import PythonSensor
from airflow.sensors.time_delta import TimeDeltaSensorAsync

pokes = {"count": 0}


def third_time_lucky():
    pokes["count"] += 1
    return pokes["count"] >= 3


def a_second_later(dag_run, **context):
    return (datetime.now(dag_run.start_date.tzinfo) - dag_run.start_date).total_seconds() > 1.0


with DAG("sensors", start_date=datetime(2024, 1, 1), schedule=None, catchup=False) as dag:
    poke = PythonSensor(task_id="poke", python_callable=third_time_lucky, poke_interval=0.1, timeout=30)
    reschedule = PythonSensor(
        task_id="reschedule",
        python_callable=a_second_later,
        mode="reschedule",
        poke_interval=0.3,
        timeout=60,
    )
    deferred_af2 = TimeDeltaSensorAsync(task_id="deferred_af2", delta=timedelta(seconds=1))
    deferred_af3 = TimeDeltaSensor(task_id="deferred_af3", delta=timedelta(seconds=1), deferrable=True)
    make_file = BashOperator(
        task_id="make_file", bash_command="touch {{ dag_run.conf['out_dir'] }}/ready.txt"
    )
    file_there = BashSensor(
        task_id="file_there",
        bash_command="test -f {{ dag_run.conf['out_dir'] }}/ready.txt",
        poke_interval=0.1,
        timeout=30,
    )
    soft = PythonSensor(
        task_id="soft_fail",
        python_callable=lambda: False,
        poke_interval=0.1,
        timeout=0.5,
        soft_fail=True,
    )
    done = BashOperator(task_id="done", bash_command="echo all sensors passed", trigger_rule="none_failed")
    [poke, reschedule, deferred_af2, deferred_af3, file_there, soft] >> done
    make_file >> file_there
