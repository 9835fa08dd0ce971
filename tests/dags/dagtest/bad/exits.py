"""A DAG file that calls sys.exit while being imported."""

import sys

from airflow import DAG

sys.exit(3)

dag = DAG("exits", schedule=None)
