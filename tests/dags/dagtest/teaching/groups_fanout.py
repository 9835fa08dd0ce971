"""Airflow 2 teaching pipeline: fan-out/fan-in with lists, nested TaskGroups, chain, cross_downstream."""

from datetime import datetime

from airflow import DAG
from airflow.models.baseoperator import chain, cross_downstream
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator
from airflow.utils.edgemodifier import Label
from airflow.utils.task_group import TaskGroup


def total(ti):
    values = ti.xcom_pull(task_ids=["fan.square_1", "fan.square_2", "fan.square_3"])
    assert values == [1, 4, 9], values
    return sum(values)


with DAG("groups_fanout", start_date=datetime(2024, 1, 1), schedule=None, catchup=False) as dag:
    start = EmptyOperator(task_id="start")
    with TaskGroup("fan") as fan:
        squares = [
            PythonOperator(task_id=f"square_{i}", python_callable=lambda i=i: i * i) for i in (1, 2, 3)
        ]
    join = PythonOperator(task_id="join", python_callable=total)
    start >> Label("fan out") >> squares
    squares >> join

    with TaskGroup("quality", default_args={"retries": 0}) as quality:
        with TaskGroup("inner") as inner:
            first = EmptyOperator(task_id="first")
            second = EmptyOperator(task_id="second")
            first >> second
        last = EmptyOperator(task_id="last")
        inner >> last
    join >> quality

    x1, x2, y1, y2 = (EmptyOperator(task_id=name) for name in ("x1", "x2", "y1", "y2"))
    cross_downstream([x1, x2], [y1, y2])
    chain(quality, [x1, x2])
