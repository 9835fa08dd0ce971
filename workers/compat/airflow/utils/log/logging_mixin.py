"""`airflow.utils.log.logging_mixin`."""

from tradewind.sdk.logging_mixin import LoggingMixin

__all__ = ["LoggingMixin"]
