"""`airflow.operators.branch_operator` (Airflow 1; Airflow 2 still resolves it): the names of
`airflow.operators.branch`."""

from airflow.operators.branch import *  # noqa: F403
from airflow.operators.branch import __all__  # noqa: F401
