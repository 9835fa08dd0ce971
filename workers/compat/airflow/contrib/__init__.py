"""`airflow.contrib` (Airflow 1): only the paths of core classes, which Airflow 2 still resolves."""
