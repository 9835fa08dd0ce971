"""`airflow.notifications`."""
