"""BashSensor: poke by running a bash command; exit code 0 means done."""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Any

from tradewind.sdk.context import context_to_airflow_vars
from tradewind.sdk.exceptions import AirflowFailException
from tradewind.sdk.operators.bash import run_bash
from tradewind.sdk.sensors.base import BaseSensorOperator


class BashSensor(BaseSensorOperator):
    """Done when `bash_command` exits 0. With `retry_exit_code`, that code means "not yet" and any other
    non-zero code fails the task; without it every non-zero code means "not yet"."""

    template_fields: Collection[str] = ("bash_command", "env")
    template_ext = (".sh", ".bash")

    def __init__(
        self,
        *,
        bash_command: str,
        env: dict[str, str] | None = None,
        output_encoding: str = "utf-8",
        retry_exit_code: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = env
        self.output_encoding = output_encoding
        self.retry_exit_code = retry_exit_code

    def poke(self, context: Any) -> bool:
        """Run the command once."""
        env = {**os.environ, **context_to_airflow_vars(context)} if self.env is None else dict(self.env)
        result = run_bash(self.bash_command, env=env, output_encoding=self.output_encoding)
        if self.retry_exit_code is not None:
            if result.exit_code == 0:
                return True
            if result.exit_code == self.retry_exit_code:
                return False
            raise AirflowFailException(f"Command exited with return code {result.exit_code}")
        return result.exit_code == 0
