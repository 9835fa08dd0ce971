"""`airflow.triggers`."""

from __future__ import annotations
