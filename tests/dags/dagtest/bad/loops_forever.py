"""A DAG file that never finishes importing."""

from airflow import DAG

while True:
    pass

dag = DAG("loops_forever", schedule=None)
