"""DRF authentication: requests the token middleware resolved act as the token's user, without CSRF."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request


class BearerTokenAuthentication(BaseAuthentication):
    """`request.user` is the token's user and `request.auth` the ApiToken (see ApiTokenMiddleware)."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        token = getattr(request._request, "api_token", None)
        if token is None:
            return None
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
