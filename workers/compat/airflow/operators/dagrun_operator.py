"""`airflow.operators.dagrun_operator` (Airflow 1 path, still resolved by Airflow 2): `airflow.operators.trigger_dagrun`'s names."""

from airflow.operators.trigger_dagrun import *  # noqa: F403
from airflow.operators.trigger_dagrun import __all__  # noqa: F401
