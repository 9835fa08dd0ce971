"""`airflow.contrib.sensors.weekday_sensor` (Airflow 1 path, still resolved by Airflow 2): `airflow.sensors.weekday`'s names."""

from airflow.sensors.weekday import *  # noqa: F403
from airflow.sensors.weekday import __all__  # noqa: F401
