"""`airflow.sdk.timezone` (Airflow 3.1): the same helpers as `airflow.utils.timezone`."""

from airflow.utils.timezone import *  # noqa: F403
from airflow.utils.timezone import __all__  # noqa: F401
