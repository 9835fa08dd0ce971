"""EmailOperator: accepted in DAG files; sending mail from tasks is not available on Tradewind."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from tradewind.sdk.baseoperator import BaseOperator
from tradewind.sdk.exceptions import AirflowException


class EmailOperator(BaseOperator):
    """Airflow's EmailOperator. The DAG parses and its fields render, but running it fails with a clear
    message: tasks have no mail server on Tradewind (use the platform's notifications instead)."""

    template_fields: Collection[str] = ("to", "subject", "html_content", "files")
    template_fields_renderers = {"html_content": "html"}
    template_ext = (".html",)
    ui_color = "#e6faf9"

    def __init__(
        self,
        *,
        to: list[str] | str,
        subject: str,
        html_content: str,
        files: list | None = None,
        cc: list[str] | str | None = None,
        bcc: list[str] | str | None = None,
        mime_subtype: str = "mixed",
        mime_charset: str = "utf-8",
        conn_id: str | None = None,
        custom_headers: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.to = to
        self.subject = subject
        self.html_content = html_content
        self.files = files or []
        self.cc = cc
        self.bcc = bcc
        self.mime_subtype = mime_subtype
        self.mime_charset = mime_charset
        self.conn_id = conn_id
        self.custom_headers = custom_headers

    def execute(self, context: Any) -> None:
        """Fail: no mail server is available to tasks."""
        raise AirflowException(
            f"EmailOperator cannot send mail on Tradewind (to: {self.to!r}, subject: {self.subject!r})"
        )
