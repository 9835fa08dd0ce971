"""Roles and the one permission matrix: every "may this member do this?" question is answered by can()."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from tenants.models import Membership


class Role(models.IntegerChoices):
    """Airflow's roles, ordered by power; the gaps leave room for a role in between."""

    VIEWER = 10, "Viewer"
    USER = 20, "User"
    OP = 30, "Op"
    ADMIN = 40, "Admin"

    @classmethod
    def from_name(cls, name: str) -> Role:
        """Parse a role name as users type it ("viewer", "Op", "ADMIN")."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            choices = ", ".join(role.name.lower() for role in cls)
            raise ValueError(f"unknown role {name!r}: choose one of {choices}") from None


# The least role that may perform each action (Airflow's meaning of the roles). Viewer reads everything
# but secret values; User also runs things; Op also manages connections, variables, pools and DAG
# repositories; Admin also manages members, grants, others' tokens and the tenant's settings.
MIN_ROLE: dict[str, Role] = {
    "tenant.view": Role.VIEWER,
    "member.view": Role.VIEWER,
    "dag.view": Role.VIEWER,
    "run.view": Role.VIEWER,
    "log.view": Role.VIEWER,
    "bundle.view": Role.VIEWER,
    "connection.view": Role.VIEWER,
    "variable.view": Role.VIEWER,
    "pool.view": Role.VIEWER,
    "audit.view": Role.VIEWER,
    "token.own": Role.VIEWER,
    "dag.edit": Role.USER,
    "run.trigger": Role.USER,
    "run.clear": Role.USER,
    "run.mark": Role.USER,
    "run.delete": Role.USER,
    "connection.edit": Role.OP,
    "variable.edit": Role.OP,
    "pool.edit": Role.OP,
    "bundle.upload": Role.OP,
    "member.manage": Role.ADMIN,
    "grant.manage": Role.ADMIN,
    "token.manage": Role.ADMIN,
    "tenant.manage": Role.ADMIN,
}


def can(membership: Membership | None, action: str) -> bool:
    """The one answer to "may this member do this?"; an unknown action is a programming error."""
    needed = MIN_ROLE[action]
    return membership is not None and membership.role >= needed
