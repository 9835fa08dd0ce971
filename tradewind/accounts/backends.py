"""The authentication backend: Django's username/password check, refusing locked-out logins first."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from tradewind.accounts import lockout


class LockoutBackend(ModelBackend):
    """ModelBackend, except that a locked-out (username, client IP) is refused before the password is
    checked. It replaces ModelBackend in AUTHENTICATION_BACKENDS, so every login path (UI, admin) honours
    the lockout; PermissionDenied stops Django from trying any other backend."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username and lockout.locked_until(username, request) is not None:
            raise PermissionDenied("locked out")
        return super().authenticate(request, username=username, password=password, **kwargs)
