"""Airflow 2 teaching pipeline: XCom push/pull and Jinja with {{ ds }}, macros and params."""

from datetime import datetime

from airflow import DAG
from airflow.models.param import Param
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator


def push(ti):
    ti.xcom_push(key="color", value="blue")
    return {"n": 42}


def pull(ti, params, ds, **context):
    assert ti.xcom_pull(task_ids="push", key="color") == "blue"
    assert ti.xcom_pull(task_ids="push") == {"n": 42}
    assert ti.xcom_pull(task_ids="push", key="no_such_key") is None
    assert ti.xcom_pull(task_ids=["push"], key="color") == ["blue"]
    assert params["greeting"] == "hello" and params["count"] == 3
    assert ds == "2024-03-15"
    kwargs = ti.xcom_pull(task_ids="templated_kwargs")
    assert kwargs == {"day": "2024-03-15", "european": "15/03/2024", "later": "2024-03-18"}, kwargs


with DAG(
    "xcom_jinja",
    start_date=datetime(2024, 1, 1),
    schedule_interval="@daily",
    catchup=False,
    params={
        "greeting": Param("hello", type="string", enum=["hello", "hi"]),
        "count": Param(3, type="integer", minimum=1),
    },
) as dag:
    pusher = PythonOperator(task_id="push", python_callable=push)
    templated = PythonOperator(
        task_id="templated_kwargs",
        python_callable=lambda **kwargs: {k: kwargs[k] for k in ("day", "european", "later")},
        op_kwargs={
            "day": "{{ ds }}",
            "european": "{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}",
            "later": "{{ macros.ds_add(ds, 3) }}",
        },
    )
    render = BashOperator(
        task_id="render",
        bash_command=(
            'echo "{{ ds }} {{ ds_nodash }} {{ macros.ds_add(ds, 3) }} '
            '{{ params.greeting }}x{{ params.count }} {{ dag.dag_id }} {{ task.task_id }}" '
            "> {{ dag_run.conf['out_dir'] }}/rendered.txt"
        ),
    )
    puller = PythonOperator(task_id="pull", python_callable=pull)
    [pusher, templated] >> puller >> render
