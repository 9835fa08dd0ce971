"""FileSensor: wait for a file (or a non-empty folder) matching a path or glob."""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Collection
from typing import Any

from tradewind.sdk.connections import fetch_connection
from tradewind.sdk.exceptions import AirflowException, AirflowNotFoundException, TaskDeferred
from tradewind.sdk.sensors.base import BaseSensorOperator
from tradewind.sdk.triggers import FileTrigger, find_matching_file

log = logging.getLogger(__name__)


class FileSensor(BaseSensorOperator):
    """Done when `filepath` (joined to the `path` extra of connection `fs_conn_id`; globs allowed, `**`
    with `recursive`) matches a file, or a folder that contains a file. `deferrable` waits in a
    FileTrigger. A missing "fs_default" connection means no base path."""

    template_fields: Collection[str] = ("filepath",)
    ui_color = "#91818a"

    def __init__(
        self,
        *,
        filepath: str,
        fs_conn_id: str = "fs_default",
        recursive: bool = False,
        deferrable: bool = False,
        start_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filepath = filepath
        self.fs_conn_id = fs_conn_id
        self.recursive = recursive
        self.deferrable = deferrable
        self._base_path: str | None = None

    @property
    def path(self) -> str:
        """The full path or glob looked for."""
        if self._base_path is None:
            try:
                connection = fetch_connection(self.fs_conn_id)
                self._base_path = str(connection.extra_dejson.get("path", ""))
            except AirflowNotFoundException:
                if self.fs_conn_id != "fs_default":
                    raise
                self._base_path = ""
        return os.path.join(self._base_path, self.filepath)

    def poke(self, context: Any) -> bool:
        """Look for a match once."""
        log.info("Poking for file %s", self.path)
        found = find_matching_file(self.path, self.recursive)
        if found:
            log.info("Found %s", found)
        return found is not None

    def execute(self, context: Any) -> Any:
        """Poke, or with `deferrable` hand the wait to a FileTrigger."""
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        raise TaskDeferred(
            trigger=FileTrigger(
                filepath=self.path, recursive=self.recursive, poke_interval=self.poke_interval
            ),
            method_name="execute_complete",
            timeout=datetime.timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Any, event: Any = None) -> None:
        """The trigger found the file (an empty event means it did not)."""
        if not event:
            raise AirflowException(f"{self.task_id} task failed as {self.filepath} not found.")
        log.info("%s completed successfully as %s found.", self.task_id, self.filepath)
