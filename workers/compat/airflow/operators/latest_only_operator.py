"""`airflow.operators.latest_only_operator` (Airflow 1; Airflow 2 still resolves it): the names of
`airflow.operators.latest_only`."""

from airflow.operators.latest_only import *  # noqa: F403
from airflow.operators.latest_only import __all__  # noqa: F401
