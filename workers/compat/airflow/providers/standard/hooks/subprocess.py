"""`airflow.providers.standard.hooks.subprocess`."""

from __future__ import annotations

from tradewind.sdk.hooks.subprocess import (
    SubprocessHook,
    SubprocessResult,
    working_directory,
)

__all__ = [
    "SubprocessHook",
    "SubprocessResult",
    "working_directory",
]
