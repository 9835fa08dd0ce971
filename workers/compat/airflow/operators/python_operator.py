"""`airflow.operators.python_operator` (Airflow 1 path): the same names as `airflow.operators.python`."""

from airflow.operators.python import *  # noqa: F403
from airflow.operators.python import __all__  # noqa: F401
