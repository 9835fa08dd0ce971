"""`airflow.providers.common.compat.standard`."""

from __future__ import annotations
