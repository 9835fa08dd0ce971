"""`airflow.contrib.sensors.python_sensor` (Airflow 1; Airflow 2 still resolves it): the names of
`airflow.sensors.python`."""

from airflow.sensors.python import *  # noqa: F403
from airflow.sensors.python import __all__  # noqa: F401
