"""Roles and the one permission matrix: every "may this member do this?" question is answered by can()."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from scheduler.models import Dag
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


# The per-DAG grant (django-guardian codename on scheduler.Dag) each DAG-specific action needs when a
# membership is narrowed to granted DAGs. Any grant on a DAG also lets its holder see the DAG.
DAG_PERMS: dict[str, str] = {
    "dag.view": "view_dag",
    "run.view": "view_dag",
    "log.view": "view_dag",
    "dag.edit": "change_dag",
    "run.trigger": "trigger_dag",
    "run.clear": "trigger_dag",
    "run.mark": "trigger_dag",
    "run.delete": "trigger_dag",
}


def can(membership: Membership | None, action: str, dag: Dag | None = None) -> bool:
    """The one answer to "may this member do this (to this DAG)?"; an unknown action is a programming error.

    The role decides first; a membership with `grants_only` additionally needs a per-DAG grant for
    DAG-specific actions on `dag` (grants narrow a role, they never add to it). Superusers get nothing
    extra here: inside a tenant they act through their membership like anyone else.
    """
    needed = MIN_ROLE[action]
    if membership is None or membership.role < needed:
        return False
    if dag is None or action not in DAG_PERMS:
        return True
    if dag.tenant_id != membership.tenant_id:
        return False
    if not membership.grants_only:
        return True
    from tradewind.accounts.grants import has_dag_grant

    return has_dag_grant(membership, dag, DAG_PERMS[action])
