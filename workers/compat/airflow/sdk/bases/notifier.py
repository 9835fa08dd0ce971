"""`airflow.sdk.bases.notifier` (Airflow 3)."""

from tradewind.sdk.notifier import BaseNotifier

__all__ = ["BaseNotifier"]
