"""`airflow.sensors.time_delta_sensor` (Airflow 1 path, still resolved by Airflow 2): `airflow.sensors.time_delta`'s names."""

from airflow.sensors.time_delta import *  # noqa: F403
from airflow.sensors.time_delta import __all__  # noqa: F401
