"""`airflow.operators.branch_operator` (Airflow 1 path, still resolved by Airflow 2): `airflow.operators.branch`'s names."""

from airflow.operators.branch import *  # noqa: F403
from airflow.operators.branch import __all__  # noqa: F401
