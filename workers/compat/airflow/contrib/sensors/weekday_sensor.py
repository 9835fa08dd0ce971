"""`airflow.contrib.sensors.weekday_sensor` (Airflow 1; Airflow 2 still resolves it): the names of
`airflow.sensors.weekday`."""

from airflow.sensors.weekday import *  # noqa: F403
from airflow.sensors.weekday import __all__  # noqa: F401
