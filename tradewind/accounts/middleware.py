"""Resolves `Authorization: Bearer twk_...` on API requests before the tenant is bound."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from tradewind.accounts import services
from tradewind.accounts.actors import Actor
from tradewind.audit.services import request_id


class ApiTokenMiddleware:
    """Gives every request an id and `request.actor`, and API requests carrying a bearer token their token
    and its user.

    Runs after Django's AuthenticationMiddleware and before TenantMiddleware, which then checks that the
    token belongs to the URL's tenant (404 otherwise) and caps the membership at the token's role. A bad,
    expired or revoked token answers 401 at once; it never falls back to the session.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id(request)
        request.api_token = None
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and "/api/" in request.path_info:
            token = services.authenticate_token(credentials.strip())
            if token is None:
                response = JsonResponse({"detail": "Invalid, expired or revoked token."}, status=401)
                response["WWW-Authenticate"] = 'Bearer realm="api"'
                return response
            request.api_token = token
            request.user = token.user
            services.touch_token(token, request)
        request.actor = Actor.from_request(request)
        response = self.get_response(request)
        response.setdefault("X-Request-ID", request.request_id)
        return response
