"""`airflow.sensors.time_delta_sensor` (Airflow 1; Airflow 2 still resolves it): the names of
`airflow.sensors.time_delta`."""

from airflow.sensors.time_delta import *  # noqa: F403
from airflow.sensors.time_delta import __all__  # noqa: F401
