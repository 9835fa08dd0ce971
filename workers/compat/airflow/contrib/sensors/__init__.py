"""`airflow.contrib.sensors` (Airflow 1): the core sensors' old paths."""
