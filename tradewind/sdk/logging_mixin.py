"""LoggingMixin: a `log` logger named after the object's class (Airflow's mixin of triggers, notifiers,
hooks and DAG authors' own classes)."""

from __future__ import annotations

import logging


class LoggingMixin:
    """Gives a class a `log` logger named after it (Airflow's LoggingMixin)."""

    @property
    def log(self) -> logging.Logger:
        """The logger of this object's class."""
        return logging.getLogger(f"{type(self).__module__}.{type(self).__name__}")
