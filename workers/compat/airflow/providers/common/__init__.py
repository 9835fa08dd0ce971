"""`airflow.providers.common`: only `common.compat`'s import paths, as re-exports."""

from __future__ import annotations
