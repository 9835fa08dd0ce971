"""`airflow.providers.standard.hooks`."""

from __future__ import annotations
