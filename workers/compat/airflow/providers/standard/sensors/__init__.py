"""`airflow.providers.standard.sensors`."""

from __future__ import annotations
