"""EmptyOperator (and its Airflow 1/2 name DummyOperator): a task that does nothing."""

from __future__ import annotations

from typing import Any

from tradewind.sdk.baseoperator import BaseOperator


class EmptyOperator(BaseOperator):
    """Does nothing; useful to group dependencies. The scheduler may mark it done without running it."""

    ui_color = "#e8f7e4"
    inherits_from_empty_operator = True

    def execute(self, context: Any) -> None:
        """Nothing to do."""


class DummyOperator(EmptyOperator):
    """Deprecated name of EmptyOperator (Airflow 2)."""
