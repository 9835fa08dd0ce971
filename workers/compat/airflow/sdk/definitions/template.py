"""`airflow.sdk.definitions.template`."""

from __future__ import annotations

from tradewind.sdk.templater import (
    literal,
)

__all__ = [
    "literal",
]
