"""`airflow.sdk.bases.operator`: the same names as `airflow.models.baseoperator`."""

from airflow.models.baseoperator import *  # noqa: F403
from airflow.models.baseoperator import __all__  # noqa: F401
