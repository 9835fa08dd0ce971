"""Reusable reads about tenants and memberships."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from tenants.models import Membership


def list_memberships(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    """The user's memberships with their tenants, suspended ones included (the UI marks them)."""
    return Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__slug")
