"""`airflow.utils.email`: DAG files import `send_email` for their callbacks. It fails when called, as the
EmailOperator does: tasks have no mail server on Tradewind."""

from __future__ import annotations

from typing import Any

from tradewind.sdk.exceptions import AirflowException


def send_email(to: list[str] | str, subject: str, html_content: str, *args: Any, **kwargs: Any) -> None:
    """Airflow's send_email: raises AirflowException, as tasks cannot send mail on Tradewind."""
    raise AirflowException(f"send_email cannot send mail on Tradewind (to: {to!r}, subject: {subject!r})")


def send_email_smtp(to: list[str] | str, subject: str, html_content: str, *args: Any, **kwargs: Any) -> None:
    """Airflow's SMTP backend of send_email: raises AirflowException, as send_email does."""
    send_email(to, subject, html_content)


__all__ = [
    "send_email",
    "send_email_smtp",
]
