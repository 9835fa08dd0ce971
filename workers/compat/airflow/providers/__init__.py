"""`airflow.providers`: the standard provider, and `common.compat`'s re-exports, are bundled with Tradewind."""

from __future__ import annotations
