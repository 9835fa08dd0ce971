"""`airflow.operators.dagrun_operator` (Airflow 1; Airflow 2 still resolves it): the names of
`airflow.operators.trigger_dagrun`."""

from airflow.operators.trigger_dagrun import *  # noqa: F403
from airflow.operators.trigger_dagrun import __all__  # noqa: F401
