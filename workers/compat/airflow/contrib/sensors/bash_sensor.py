"""`airflow.contrib.sensors.bash_sensor` (Airflow 1; Airflow 2 still resolves it): the names of
`airflow.sensors.bash`."""

from airflow.sensors.bash import *  # noqa: F403
from airflow.sensors.bash import __all__  # noqa: F401
