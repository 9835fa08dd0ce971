"""`airflow.notifications.basenotifier` (Airflow 2)."""

from tradewind.sdk.notifier import BaseNotifier

__all__ = ["BaseNotifier"]
