"""`airflow.models.taskinstancekey`: what identifies a try of a task instance (operator links receive it)."""

from __future__ import annotations

from typing import NamedTuple


class TaskInstanceKey(NamedTuple):
    """(dag_id, task_id, run_id, try_number, map_index): the same tuple as a running task's `ti.key`."""

    dag_id: str
    task_id: str
    run_id: str
    try_number: int = 1
    map_index: int = -1

    @property
    def primary(self) -> tuple[str, str, str, int]:
        """The key without the try number."""
        return self.dag_id, self.task_id, self.run_id, self.map_index

    def with_try_number(self, try_number: int) -> TaskInstanceKey:
        """The same task instance at another try."""
        return TaskInstanceKey(self.dag_id, self.task_id, self.run_id, try_number, self.map_index)


__all__ = [
    "TaskInstanceKey",
]
