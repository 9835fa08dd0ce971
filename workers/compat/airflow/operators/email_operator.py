"""`airflow.operators.email_operator` (Airflow 1 path, still resolved by Airflow 2): `airflow.operators.email`'s names."""

from airflow.operators.email import *  # noqa: F403
from airflow.operators.email import __all__  # noqa: F401
