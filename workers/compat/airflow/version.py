"""Airflow's version module."""

from __future__ import annotations

version = "2.10.5"
