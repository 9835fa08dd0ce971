"""`airflow.sensors.base_sensor_operator` (Airflow 1 path): the same names as `airflow.sensors.base`."""

from airflow.sensors.base import *  # noqa: F403
from airflow.sensors.base import __all__  # noqa: F401
