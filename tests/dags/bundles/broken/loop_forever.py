# An airflow DAG file that never finishes importing.
while True:
    pass
