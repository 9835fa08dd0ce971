"""`airflow.utils.dag_parsing_context` (Airflow 2.4+): lets a file that generates many DAGs build only the one
a task runs in. Tradewind always builds every DAG of a file, so both fields are None, which DAG files read
as "build them all"."""

from __future__ import annotations

from typing import NamedTuple


class AirflowParsingContext(NamedTuple):
    """The DAG and task being run, when a file is parsed only to run one task."""

    dag_id: str | None
    task_id: str | None


def get_parsing_context() -> AirflowParsingContext:
    """The current parsing context: (None, None), as Tradewind parses whole files."""
    return AirflowParsingContext(dag_id=None, task_id=None)


__all__ = [
    "AirflowParsingContext",
    "get_parsing_context",
]
