"""`airflow.sensors.date_time_sensor` (Airflow 1 path, still resolved by Airflow 2): `airflow.sensors.date_time`'s names."""

from airflow.sensors.date_time import *  # noqa: F403
from airflow.sensors.date_time import __all__  # noqa: F401
