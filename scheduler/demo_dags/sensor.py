"""A sensor in the Airflow 3 style: `wait_for_partition` pokes every second until its condition holds."""

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import DAG

# In "poke" mode every poke of one try runs in the same process, so this counter survives between pokes.
_pokes = {"count": 0}


def partition_has_landed() -> bool:
    """Pretend an upstream system delivers today's partition a couple of seconds after we start looking."""
    _pokes["count"] += 1
    print(f"poke {_pokes['count']}: partition {'found' if _pokes['count'] >= 3 else 'not there yet'}")
    return _pokes["count"] >= 3


def process_partition() -> str:
    print("processing the partition")
    return "done"


with DAG(
    dag_id="demo_sensor",
    description="Wait for a partition, then process it",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["demo", "sensor"],
):
    wait = PythonSensor(
        task_id="wait_for_partition",
        python_callable=partition_has_landed,
        poke_interval=1,
        timeout=60,
        mode="poke",
    )
    process = PythonOperator(task_id="process_partition", python_callable=process_partition)

    wait >> process
