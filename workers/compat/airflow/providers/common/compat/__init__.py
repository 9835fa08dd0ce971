"""`airflow.providers.common.compat`: the paths DAG and helper code import, as re-exports."""

from __future__ import annotations
