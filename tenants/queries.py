"""Reusable reads about tenants and memberships."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from tenants.models import Membership

if TYPE_CHECKING:
    from tradewind.accounts.models import ApiToken


def list_memberships(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    """The user's memberships with their tenants, suspended ones included (the UI marks them)."""
    return Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__slug")


def get_membership(*, user: AbstractBaseUser, slug: str, token: ApiToken | None = None) -> Membership | None:
    """The membership `user` acts with in tenant `slug`, or None (not a member, no such tenant, or a token
    of another tenant). With a token the role is the lesser of the member's and the token's cap; that
    capped copy is never saved: it only answers permission questions for this request or stream."""
    membership = (
        Membership.objects.select_related("tenant", "user").filter(tenant__slug=slug, user=user).first()
    )
    if membership is None or token is None:
        return membership
    if token.tenant_id != membership.tenant_id:
        return None
    membership.role = min(membership.role, token.role_cap)
    membership.via_token = token
    return membership
