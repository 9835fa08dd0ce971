"""Airflow's top-level package on Tradewind: `from airflow import DAG` (Airflow 2 semantics)."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "2.10.5"

_LAZY = {
    "DAG": ("tradewind.sdk.dag", "Airflow2DAG"),
    "Dataset": ("tradewind.sdk.assets", "Dataset"),
    "XComArg": ("tradewind.sdk.xcom_arg", "XComArg"),
    "Asset": ("tradewind.sdk.assets", "Asset"),
    # Airflow 2 also gives these at the top level (`from airflow import AirflowException`).
    "AirflowException": ("tradewind.sdk.exceptions", "AirflowException"),
    "version": ("airflow.version", ""),
}

__all__ = ["DAG", "Dataset", "XComArg", "__version__"]


def __getattr__(name: str) -> Any:
    # Loaded on first use, as Airflow does, so `import airflow` stays cheap.
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value
    return value
