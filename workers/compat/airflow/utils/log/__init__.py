"""`airflow.utils.log`."""

from __future__ import annotations
