"""`airflow.providers.standard.triggers`."""

from __future__ import annotations
