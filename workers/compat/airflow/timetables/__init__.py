"""`airflow.timetables`."""

from __future__ import annotations
