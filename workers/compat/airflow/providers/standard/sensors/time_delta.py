"""`airflow.providers.standard.sensors.time_delta`: the same names as `airflow.sensors.time_delta`."""

from airflow.sensors.time_delta import *  # noqa: F403
from airflow.sensors.time_delta import __all__  # noqa: F401
