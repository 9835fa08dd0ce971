# An airflow DAG file that eats all the memory it can get.
blocks = []
while True:
    blocks.append(bytearray(64 * 1024 * 1024))
