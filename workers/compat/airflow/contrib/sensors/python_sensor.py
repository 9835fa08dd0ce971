"""`airflow.contrib.sensors.python_sensor` (Airflow 1 path, still resolved by Airflow 2): `airflow.sensors.python`'s names."""

from airflow.sensors.python import *  # noqa: F403
from airflow.sensors.python import __all__  # noqa: F401
