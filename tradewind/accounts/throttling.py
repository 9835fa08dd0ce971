"""Per-token API throttling in Django's cache (Redis when configured): one bucket per token."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
    """Limits each API token to its own `rate`, or settings.TRADEWIND_TOKEN_RATE; sessions are not limited
    here (logins are throttled by the lockout backend)."""

    scope = "token"

    def get_rate(self) -> str | None:
        return settings.TRADEWIND_TOKEN_RATE or None

    def allow_request(self, request: Request, view: Any) -> bool:
        token = getattr(request._request, "api_token", None)
        if token is None:
            return True
        self.rate = token.rate or self.get_rate()
        if not self.rate:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        token = request._request.api_token
        # The digest, not the id: ids repeat across test databases, a shared Redis must not mix them.
        return f"throttle_token_{token.digest[:32]}"
