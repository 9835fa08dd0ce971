"""`airflow.utils.log.logging_mixin`."""

from __future__ import annotations

import logging


class LoggingMixin:
    """Gives a class a `log` logger named after it (Airflow's LoggingMixin)."""

    @property
    def log(self) -> logging.Logger:
        """The logger of this object's class."""
        return logging.getLogger(f"{type(self).__module__}.{type(self).__name__}")
