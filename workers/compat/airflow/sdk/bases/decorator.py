"""`airflow.sdk.bases.decorator`: the same names as `airflow.decorators.base`."""

from airflow.decorators.base import *  # noqa: F403
from airflow.decorators.base import __all__  # noqa: F401
