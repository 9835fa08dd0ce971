"""`airflow.contrib.sensors.file_sensor` (Airflow 1 path, still resolved by Airflow 2): `airflow.sensors.filesystem`'s names."""

from airflow.sensors.filesystem import *  # noqa: F403
from airflow.sensors.filesystem import __all__  # noqa: F401
