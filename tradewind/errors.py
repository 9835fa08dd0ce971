"""Domain errors raised by services, and the one place that turns them into HTTP answers."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class DomainError(Exception):
    """A refusal a user can act on; the message is safe to show."""

    status_code = status.HTTP_400_BAD_REQUEST


class Invalid(DomainError):
    """The input breaks a rule (HTTP 400)."""


class NotFound(DomainError):
    """No such object in this tenant (HTTP 404)."""

    status_code = status.HTTP_404_NOT_FOUND


class Conflict(DomainError):
    """The object's current state forbids the action (HTTP 409)."""

    status_code = status.HTTP_409_CONFLICT


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus domain errors as `{"detail": message}` with their status code."""
    if isinstance(exc, DomainError):
        return Response({"detail": str(exc)}, status=exc.status_code)
    return exception_handler(exc, context)
