"""Every write to tenants and memberships goes through these functions (views and commands call them).

Each change is audited in the tenant's chain; `actor` defaults to the system (an operator's command).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from tenants.models import Membership, Tenant
from tenants.roles import Role
from tradewind.accounts.actors import Actor
from tradewind.audit.actions import AuditAction
from tradewind.audit.services import record
from tradewind.errors import Conflict, Invalid

SYSTEM = Actor.system()


@transaction.atomic
def create_tenant(*, slug: str, name: str | None = None, actor: Actor = SYSTEM, **quotas: int) -> Tenant:
    """Create an active tenant; a taken slug or a bad quota is a clear error."""
    if Tenant.objects.filter(slug=slug).exists():
        raise Conflict(f"a tenant with slug {slug!r} already exists")
    tenant = Tenant(slug=slug, name=name or slug, **quotas)
    _validate(tenant)
    tenant.save()
    record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.TENANT_CREATED,
        obj=tenant,
        after={"slug": slug, "name": tenant.name, **quotas},
    )
    return tenant


@transaction.atomic
def set_tenant_status(*, tenant: Tenant, status: Tenant.Status, actor: Actor = SYSTEM) -> Tenant:
    """Suspend or reactivate a tenant; a suspended tenant's pages and API refuse every request."""
    before = tenant.status
    tenant.status = status
    tenant.save(update_fields=["status"])
    record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.TENANT_CHANGED,
        obj=tenant,
        before={"status": before},
        after={"status": status},
    )
    return tenant


@transaction.atomic
def change_tenant_settings(
    *, tenant: Tenant, actor: Actor, name: str, request: HttpRequest | None = None
) -> Tenant:
    """What a tenant's admins may change about their tenant: its display name. Status and quotas are the
    platform's (superusers, in the admin)."""
    before = tenant.name
    tenant.name = name.strip()
    _validate(tenant)
    tenant.save(update_fields=["name"])
    record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.TENANT_CHANGED,
        obj=tenant,
        before={"name": before},
        after={"name": tenant.name},
        request=request,
    )
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
def add_member(
    *,
    tenant: Tenant,
    user: AbstractUser,
    role: Role,
    actor: Actor = SYSTEM,
    request: HttpRequest | None = None,
) -> Membership:
    """Give `user` the role `role` in `tenant`, attaching them if they are not yet a member."""
    existing = Membership.objects.for_tenant(tenant).filter(user=user).first()
    if existing is not None and existing.role != role:
        return change_role(membership=existing, role=role, actor=actor, request=request)
    if existing is not None:
        return existing
    membership = Membership.objects.create(tenant=tenant, user=user, role=role)
    record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.MEMBER_ADDED,
        obj=membership,
        after={"user": user.get_username(), "role": Role(role).label},
        request=request,
    )
    return membership


@transaction.atomic
def change_role(
    *, membership: Membership, role: Role, actor: Actor = SYSTEM, request: HttpRequest | None = None
) -> Membership:
    """Change a member's role; the tenant always keeps at least one admin."""
    if membership.role == Role.ADMIN and role != Role.ADMIN:
        _require_another_admin(membership)
    before = Role(membership.role).label
    membership.role = role
    membership.save(update_fields=["role"])
    if before != Role(role).label:
        record(
            tenant=membership.tenant,
            actor=actor,
            action=AuditAction.MEMBER_ROLE_CHANGED,
            obj=membership,
            before={"role": before},
            after={"role": Role(role).label},
            request=request,
        )
    return membership


@transaction.atomic
def remove_member(
    *, membership: Membership, actor: Actor = SYSTEM, request: HttpRequest | None = None
) -> None:
    """Detach a user from a tenant (the user account stays); the last admin cannot be removed. Their
    per-DAG grants and group memberships in the tenant go, and their tokens for it are revoked."""
    from tradewind.accounts.grants import forget_member
    from tradewind.accounts.services import revoke_member_tokens

    if membership.role == Role.ADMIN:
        _require_another_admin(membership)
    record(
        tenant=membership.tenant,
        actor=actor,
        action=AuditAction.MEMBER_REMOVED,
        obj=membership,
        before={"user": membership.user.get_username(), "role": Role(membership.role).label},
        request=request,
    )
    forget_member(membership)
    revoke_member_tokens(tenant=membership.tenant, actor=actor, user=membership.user)
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
