# An airflow DAG file that exits the interpreter.
import sys

sys.exit(3)
