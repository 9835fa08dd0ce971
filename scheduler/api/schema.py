"""OpenAPI (drf-spectacular) knowledge the schema cannot infer: how API tokens authenticate.

Imported by scheduler.api.urls so the extension is registered whenever the API's routes are loaded.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Bearer twk_...`: a personal or service-account token of one tenant."""

    target_class = "tradewind.accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "A Tradewind API token (twk_...)."}
