"""`airflow.utils.decorators`."""

from __future__ import annotations

from collections.abc import Callable


def apply_defaults(func: Callable) -> Callable:
    """Airflow 1's decorator for operator __init__: default_args are applied to every operator anyway."""
    return func
