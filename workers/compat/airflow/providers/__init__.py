"""`airflow.providers`: only the standard provider is bundled with Tradewind."""

from __future__ import annotations
