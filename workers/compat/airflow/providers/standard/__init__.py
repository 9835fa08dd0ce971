"""`airflow.providers.standard`: Airflow 3's standard operators and sensors."""

from __future__ import annotations
