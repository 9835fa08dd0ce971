"""Task execution: executors, the task runner and its sandbox, the Airflow compatibility layer."""
