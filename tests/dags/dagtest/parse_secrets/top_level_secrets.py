"""Top-level code reading a Variable and a Connection while the file is parsed: `dags test --tenant SLUG`
answers them from that tenant, at parse time as at run time."""

from datetime import datetime

from airflow.hooks.base import BaseHook
from airflow.models import Variable
from airflow.sdk import dag, task

TABLES = Variable.get("tables", deserialize_json=True)
WAREHOUSE_LOGIN = BaseHook.get_connection("warehouse").login


@dag(dag_id=f"load_as_{WAREHOUSE_LOGIN}", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def load():
    for table in TABLES:

        @task(task_id=f"load_{table}")
        def load_table(name: str = table) -> str:
            return name

        load_table()


load()
