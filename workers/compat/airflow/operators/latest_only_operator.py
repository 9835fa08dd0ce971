"""`airflow.operators.latest_only_operator` (Airflow 1 path, still resolved by Airflow 2): `airflow.operators.latest_only`'s names."""

from airflow.operators.latest_only import *  # noqa: F403
from airflow.operators.latest_only import __all__  # noqa: F401
