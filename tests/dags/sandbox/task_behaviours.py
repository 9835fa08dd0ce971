"""One task per behaviour the sandbox must handle while a task runs."""

import os
import signal
import subprocess
import time
from datetime import datetime

from airflow import DAG
from airflow.models import Variable
from airflow.operators.python import PythonOperator


def produce():
    return {"rows": 3, "names": ["a", "b"]}


def consume(ti):
    value = ti.xcom_pull(task_ids="produce")
    print(f"consumed {value}")
    return value["rows"] * 2


def spawn_and_hang():
    grandchild = subprocess.Popen(["sleep", "300"])
    print(f"grandchild={grandchild.pid}", flush=True)
    time.sleep(300)


def ignore_sigterm_and_hang():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = subprocess.Popen(["sleep", "300"])
    print(f"grandchild={grandchild.pid}", flush=True)
    while True:
        time.sleep(1)


def crash():
    os._exit(5)


def chatter():
    for _ in range(3000):
        print("x" * 1023)


def read_secret():
    return Variable.get("api_password")


def report():
    return {"env": sorted(os.environ), "cwd": os.getcwd(), "uid": os.getuid(), "pid": os.getpid()}


def hang():
    time.sleep(300)


def dag_failed(context):
    print(f"dag failure callback ran: {context['reason']}")


with DAG(
    dag_id="sandbox_behaviours",
    start_date=datetime(2024, 1, 1),
    schedule=None,
    on_failure_callback=dag_failed,
):
    for function in (
        produce,
        consume,
        spawn_and_hang,
        ignore_sigterm_and_hang,
        crash,
        chatter,
        read_secret,
        report,
        hang,
    ):
        PythonOperator(task_id=function.__name__, python_callable=function)
