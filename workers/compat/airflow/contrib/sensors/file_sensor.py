"""`airflow.contrib.sensors.file_sensor` (Airflow 1; Airflow 2 still resolves it): the names of
`airflow.sensors.filesystem`."""

from airflow.sensors.filesystem import *  # noqa: F403
from airflow.sensors.filesystem import __all__  # noqa: F401
