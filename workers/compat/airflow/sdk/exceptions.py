"""`airflow.sdk.exceptions`: since Airflow 3.1 the task exceptions live here too, so every class of
`airflow.exceptions`."""

from airflow.exceptions import *  # noqa: F403
