"""Management commands acting for someone: `--tenant SLUG` and `--as USERNAME` resolved in one place."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser

from tenants.models import Membership, Tenant
from tenants.roles import Role, can
from tradewind.accounts.actors import Actor


def add_actor_arguments(parser: CommandParser, *, tenant_required: bool = True) -> None:
    """Add `--tenant SLUG` and `--as USERNAME` to a command's parser."""
    parser.add_argument("--tenant", required=tenant_required, help="tenant slug")
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="USERNAME",
        help="act as this member: their role must allow the action, and the audit log names them "
        "(default: the platform operator running the command)",
    )


def get_tenant(slug: str) -> Tenant:
    """The tenant with this slug, or a CommandError naming it."""
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"no tenant with slug {slug!r}")
    return tenant


def command_actor(*, tenant: Tenant, username: str | None, action: str) -> Actor:
    """Who a command acts as. Without `username`: the system (an operator with shell access). With one:
    that member, refused unless `can()` allows `action` for their membership in `tenant`."""
    if not username:
        return Actor.system("cli")
    user = get_user_model().objects.filter(username=username).first()
    membership = Membership.objects.for_tenant(tenant).filter(user=user).select_related("user").first()
    if user is None or membership is None:
        raise CommandError(f"{username!r} is not a member of tenant {tenant.slug!r}")
    if not can(membership, action):
        raise CommandError(
            f"{username!r} ({Role(membership.role).label}) may not do {action!r} in tenant {tenant.slug!r}"
        )
    return Actor.for_user(user)
