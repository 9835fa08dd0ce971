"""API tokens and service accounts: creation (the secret is returned once), use, revocation."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.throttling import SimpleRateThrottle

from tenants.models import Membership
from tenants.roles import Role
from tradewind.accounts.actors import Actor
from tradewind.accounts.models import TOKEN_PREFIX, ApiToken, ServiceAccount
from tradewind.audit.actions import AuditAction
from tradewind.audit.services import record
from tradewind.errors import Conflict, Invalid

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

    from tenants.models import Tenant


def token_digest(raw: str) -> str:
    """How a token is stored and looked up: its sha256 (tokens are random, so no slow hash is needed)."""
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def create_token(
    *,
    tenant: Tenant,
    actor: Actor,
    user: AbstractUser,
    name: str,
    role_cap: Role | None = None,
    expires_at: datetime | None = None,
    rate: str = "",
    request: HttpRequest | None = None,
) -> tuple[ApiToken, str]:
    """Create a token acting as `user` (a member of `tenant`) capped at `role_cap` (default: the member's
    role; never above it). Returns the row and the secret, which is not stored and cannot be shown again."""
    membership = Membership.objects.for_tenant(tenant).filter(user=user).first()
    if membership is None:
        raise Invalid(f"{user.get_username()!r} is not a member of this tenant")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise Invalid("a token needs a name of 1-200 characters")
    cap = Role(role_cap) if role_cap is not None else Role(membership.role)
    if cap > membership.role:
        raise Invalid(f"a token cannot exceed its user's role ({Role(membership.role).label})")
    if expires_at is not None and expires_at <= timezone.now():
        raise Invalid("the expiry must be in the future")
    if rate:
        try:
            SimpleRateThrottle.parse_rate(None, rate)
        except (ValueError, KeyError):
            raise Invalid(f"invalid rate {rate!r}: use e.g. 100/min") from None
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    is_service = ServiceAccount.objects.filter(user=user).exists()
    token = ApiToken.objects.create(
        tenant=tenant,
        user=user,
        name=name,
        kind=ApiToken.Kind.SERVICE if is_service else ApiToken.Kind.PERSONAL,
        prefix=raw[: len(TOKEN_PREFIX) + 8],
        digest=token_digest(raw),
        role_cap=cap,
        rate=rate,
        expires_at=expires_at,
        created_by_id=actor.user_id,
    )
    record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.TOKEN_CREATED,
        obj=token,
        after={
            "name": name,
            "user": user.get_username(),
            "role_cap": cap.label,
            "prefix": token.prefix,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
        request=request,
    )
    return token, raw


def authenticate_token(raw: str) -> ApiToken | None:
    """The usable token with this secret, or None (unknown, malformed, revoked, expired, inactive user)."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = ApiToken.objects.select_related("user", "tenant").filter(digest=token_digest(raw)).first()
    if token is None or not token.is_usable:
        return None
    return token


def touch_token(token: ApiToken, request: HttpRequest) -> None:
    """Note that `token` was just used. last_used_at and the `token.used` audit entry are written at most
    once per TRADEWIND_TOKEN_USED_AUDIT_SECONDS per token, so busy clients do not flood the log."""
    now = timezone.now()
    interval = timedelta(seconds=settings.TRADEWIND_TOKEN_USED_AUDIT_SECONDS)
    if token.last_used_at is not None and now - token.last_used_at < interval:
        return
    with transaction.atomic():
        # The filter makes concurrent requests race for one write instead of all writing.
        stale = ApiToken.objects.filter(pk=token.pk)
        if token.last_used_at is not None:
            stale = stale.filter(last_used_at=token.last_used_at)
        ip = request.META.get("REMOTE_ADDR", "")[:45]
        if not stale.update(last_used_at=now, last_used_ip=ip):
            return
        token.last_used_at = now
        record(
            tenant=token.tenant,
            actor=Actor.from_request(request),
            action=AuditAction.TOKEN_USED,
            obj=token,
            detail={"path": request.path[:300], "method": request.method},
            request=request,
        )


@transaction.atomic
def revoke_token(
    *, tenant: Tenant, actor: Actor, token: ApiToken, request: HttpRequest | None = None
) -> ApiToken:
    """Revoke a token of `tenant` at once (later requests with it answer 401); revoking twice is a no-op."""
    if token.tenant_id != tenant.pk:
        raise Invalid("the token does not belong to this tenant")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.revoked_by_id = actor.user_id
        token.save(update_fields=["revoked_at", "revoked_by"])
        record(
            tenant=tenant,
            actor=actor,
            action=AuditAction.TOKEN_REVOKED,
            obj=token,
            detail={"name": token.name, "prefix": token.prefix},
            request=request,
        )
    return token


def revoke_member_tokens(*, tenant: Tenant, actor: Actor, user: AbstractUser) -> int:
    """Revoke every live token `user` holds in `tenant` (when they leave it); returns how many."""
    tokens = ApiToken.objects.for_tenant(tenant).filter(user=user, revoked_at__isnull=True)
    count = 0
    for token in tokens:
        revoke_token(tenant=tenant, actor=actor, token=token)
        count += 1
    return count


@transaction.atomic
def create_service_account(
    *,
    tenant: Tenant,
    actor: Actor,
    name: str,
    role: Role,
    description: str = "",
    request: HttpRequest | None = None,
) -> AbstractUser:
    """A tenant-owned user that cannot log in, with `role` in `tenant`; give it tokens with create_token.
    Its username is `svc-<tenant>-<name>`."""
    from tenants import services as tenant_services

    name = (name or "").strip().lower()
    if not name or not name.replace("-", "").replace("_", "").isalnum() or len(name) > 60:
        raise Invalid("a service account name is 1-60 letters, digits, '-' or '_'")
    username = f"svc-{tenant.slug}-{name}"
    if get_user_model().objects.filter(username=username).exists():
        raise Conflict(f"service account {name!r} already exists")
    user, _ = tenant_services.ensure_user(username=username)
    ServiceAccount.objects.create(
        tenant=tenant, user=user, description=description, created_by_id=actor.user_id
    )
    tenant_services.add_member(tenant=tenant, user=user, role=role, actor=actor, request=request)
    return user
