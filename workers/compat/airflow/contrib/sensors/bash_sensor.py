"""`airflow.contrib.sensors.bash_sensor` (Airflow 1 path, still resolved by Airflow 2): `airflow.sensors.bash`'s names."""

from airflow.sensors.bash import *  # noqa: F403
from airflow.sensors.bash import __all__  # noqa: F401
