"""An Airflow 3 style DAG: airflow.sdk imports, the standard provider, mapping, assets, params, context."""

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import DAG, Asset, Label, Param, TaskGroup, chain, get_current_context, task

ORDERS = Asset("s3://warehouse/orders")

with DAG(
    dag_id="modern_pipeline",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"regions": Param(["eu", "us"], type="array"), "scale": Param(2, type="integer", minimum=1)},
    tags=["airflow3"],
):
    wait = TimeDeltaSensor(task_id="wait", delta=pendulum.duration(seconds=0), poke_interval=1)

    @task
    def regions(params=None) -> list[str]:
        return params["regions"]

    @task
    def load(region: str, scale: int) -> int:
        context = get_current_context()
        return len(region) * scale + context["ti"].map_index

    @task(outlets=[ORDERS])
    def publish(counts: list[int], *, outlet_events=None) -> int:
        outlet_events[ORDERS].extra = {"total": sum(counts)}
        return sum(counts)

    with TaskGroup("report") as report:
        stamp = BashOperator(task_id="stamp", bash_command="echo {{ ds }} {{ params.scale }}")
        PythonOperator(task_id="echo", python_callable=lambda ds: ds) << stamp

    loaded = load.partial(scale=3).expand(region=regions())
    total = publish(loaded)
    chain(wait, loaded)
    total >> Label("then") >> report
