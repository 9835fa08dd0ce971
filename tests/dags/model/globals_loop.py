"""DAGs created in a loop and published through globals(), without a with-block."""

from datetime import datetime

from tradewind.sdk import DAG
from tradewind.sdk.operators.empty import EmptyOperator

for name in ("alpha", "beta", "gamma"):
    dag = DAG(f"loop_{name}", start_date=datetime(2024, 1, 1), schedule="@daily", auto_register=False)
    EmptyOperator(task_id="start", dag=dag) >> EmptyOperator(task_id="end", dag=dag)
    globals()[f"dag_{name}"] = dag
