"""A DAG file importing a module that does not exist."""

import pandas_but_misspelled  # noqa: F401
from airflow import DAG

dag = DAG("missing_import", schedule=None)
