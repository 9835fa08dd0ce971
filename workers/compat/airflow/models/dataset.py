"""`airflow.models.dataset` (Airflow 2.4–2.11): the same names as `airflow.datasets`."""

from airflow.datasets import *  # noqa: F403
from airflow.datasets import __all__  # noqa: F401
