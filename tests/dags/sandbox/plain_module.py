"""A Python file without any DAG: parses to no DAGs and no error."""

print("importing a plain module")
VALUE = 42
