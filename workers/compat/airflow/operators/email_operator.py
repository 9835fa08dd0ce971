"""`airflow.operators.email_operator` (Airflow 1; Airflow 2 still resolves it): the names of
`airflow.operators.email`."""

from airflow.operators.email import *  # noqa: F403
from airflow.operators.email import __all__  # noqa: F401
