"""Template context: the current tenant and the user's other tenants, for the tenant switcher."""

from __future__ import annotations

from django.http import HttpRequest

from tenants.queries import list_memberships


def tenant(request: HttpRequest) -> dict[str, object]:
    """`tenant`, `membership` and `my_memberships` for every template."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "tenant": getattr(request, "tenant", None),
        "membership": getattr(request, "membership", None),
        "my_memberships": lambda: list_memberships(user=user),
    }
