"""`airflow.sensors.date_time_sensor` (Airflow 1; Airflow 2 still resolves it): the names of
`airflow.sensors.date_time`."""

from airflow.sensors.date_time import *  # noqa: F403
from airflow.sensors.date_time import __all__  # noqa: F401
