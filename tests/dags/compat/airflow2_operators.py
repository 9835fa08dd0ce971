"""An Airflow 2 style DAG using old import paths: dummy/python_operator modules, Variable at parse time,
branching, a sensor, a task group, labels, trigger rules, datasets, XCom pulls in templates, pytz and tabulate
(which every Airflow 2 install has)."""

from datetime import datetime, timedelta

import pendulum
from airflow.models import DAG, Variable
from airflow.models.dataset import Dataset
from airflow.operators.bash_operator import BashOperator
from airflow.operators.dummy import DummyOperator
from airflow.operators.python_operator import BranchPythonOperator, PythonOperator
from airflow.sensors.python import PythonSensor
from airflow.utils.edgemodifier import Label
from airflow.utils.task_group import TaskGroup
from airflow.utils.trigger_rule import TriggerRule
from pytz import UTC
from tabulate import tabulate

ENVIRONMENT = Variable.get("environment", default_var="dev")
REPORTS = Dataset("s3://reports/daily.csv")


def choose(**context):
    return "weekday" if context["logical_date"].weekday() < 5 else "weekend"


def produce(ti, params):
    print(tabulate([[ENVIRONMENT, params["rows"]]], headers=["environment", "rows"]))
    ti.xcom_push(key="rows", value=params["rows"])
    return f"{ENVIRONMENT}-report"


with DAG(
    dag_id="legacy_operators",
    schedule_interval="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    params={"rows": 5},
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
) as dag:
    start = DummyOperator(task_id="start")
    ready = PythonSensor(
        task_id="ready", python_callable=lambda: datetime.now(UTC).year > 2000, poke_interval=1, timeout=10
    )
    branch = BranchPythonOperator(task_id="branch", python_callable=choose)
    with TaskGroup("work") as work:
        make = PythonOperator(task_id="produce", python_callable=produce, outlets=[REPORTS])
        show = BashOperator(
            task_id="show",
            bash_command="echo {{ ti.xcom_pull(task_ids='work.produce') }} "
            "{{ ti.xcom_pull(task_ids='work.produce', key='rows') }}",
        )
        make >> show
    weekday = DummyOperator(task_id="weekday")
    weekend = DummyOperator(task_id="weekend")
    done = DummyOperator(task_id="done", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)

    start >> ready >> branch
    branch >> Label("Mon-Fri") >> weekday >> work >> done
    branch >> Label("Sat-Sun") >> weekend >> done
