"""Every write to tenants and memberships goes through these functions (views and commands call them)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction

from tenants.models import Membership, Tenant
from tenants.roles import Role
from tradewind.errors import Conflict, Invalid


@transaction.atomic
def create_tenant(*, slug: str, name: str | None = None, **quotas: int) -> Tenant:
    """Create an active tenant; a taken slug or a bad quota is a clear error."""
    if Tenant.objects.filter(slug=slug).exists():
        raise Conflict(f"a tenant with slug {slug!r} already exists")
    tenant = Tenant(slug=slug, name=name or slug, **quotas)
    _validate(tenant)
    tenant.save()
    return tenant


@transaction.atomic
def set_tenant_status(*, tenant: Tenant, status: Tenant.Status) -> Tenant:
    """Suspend or reactivate a tenant; a suspended tenant's pages and API refuse every request."""
    tenant.status = status
    tenant.save(update_fields=["status"])
    return tenant


@transaction.atomic
def ensure_user(
    *, username: str, password: str | None = None, email: str = "", is_superuser: bool = False
) -> tuple[AbstractUser, bool]:
    """Return the user called `username`, creating it first if needed (then `created` is True)."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is not None:
        return user, False
    user = user_model(username=username, email=email, is_superuser=is_superuser, is_staff=is_superuser)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    _validate(user)
    user.save()
    return user, True


@transaction.atomic
def add_member(*, tenant: Tenant, user: AbstractUser, role: Role) -> Membership:
    """Give `user` the role `role` in `tenant`, attaching them if they are not yet a member."""
    membership, _ = Membership.objects.update_or_create(tenant=tenant, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def change_role(*, membership: Membership, role: Role) -> Membership:
    """Change a member's role; the tenant always keeps at least one admin."""
    if membership.role == Role.ADMIN and role != Role.ADMIN:
        _require_another_admin(membership)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def remove_member(*, membership: Membership) -> None:
    """Detach a user from a tenant (the user account stays); the last admin cannot be removed."""
    if membership.role == Role.ADMIN:
        _require_another_admin(membership)
    membership.delete()


def _require_another_admin(membership: Membership) -> None:
    others = Membership.objects.for_tenant(membership.tenant_id).filter(role=Role.ADMIN)
    if not others.exclude(pk=membership.pk).exists():
        raise Conflict("a tenant must keep at least one admin")


def _validate(instance: Tenant | AbstractUser) -> None:
    try:
        instance.full_clean()
    except ValidationError as error:
        details = (f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
        raise Invalid("; ".join(details)) from None
