"""Tenant ownership for scheduler HA: a lease row per tenant, renewed by its owner, taken over when stale.

Time is the database's, so the clocks of scheduler hosts never disagree about expiry. Overlap during a
takeover is harmless: every state write is fenced, so two schedulers can never run the same try twice.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.db.models.functions import Now

from scheduler.models import SchedulerLease


def _ttl() -> timedelta:
    return timedelta(seconds=settings.TRADEWIND_LEASE_SECONDS)


def acquire(tenant_id: int, owner: str) -> bool:
    """Take or renew the lease of a tenant; False while another owner's lease is still valid."""
    return acquire_many([tenant_id], owner) == [tenant_id]


def acquire_many(tenant_ids: list[int], owner: str, limit: int | None = None) -> list[int]:
    """Renew `owner`'s leases among these tenants and take the free or expired ones, holding at most `limit`
    in all (renewals first); returns the tenants held now, in the given order. A few queries, however many
    tenants: two owners racing for one expired lease are serialised by its row lock, and only one wins."""
    if not tenant_ids:
        return []
    leases = SchedulerLease.objects.filter(tenant_id__in=tenant_ids)
    leases.filter(owner=owner).update(expires_at=Now() + _ttl())
    expired = ExpressionWrapper(Q(expires_at__lt=Now()), output_field=BooleanField())
    rows = {  # tenant -> (owner, is_expired)
        tenant_id: (row_owner, is_expired)
        for tenant_id, row_owner, is_expired in leases.annotate(expired=expired).values_list(
            "tenant_id", "owner", "expired"
        )
    }
    free = [t for t in tenant_ids if t not in rows or (rows[t][0] != owner and rows[t][1])]
    if limit is not None:
        free = free[: max(0, limit - sum(1 for row_owner, _ in rows.values() if row_owner == owner))]
    taken = [t for t in free if t in rows]
    if taken:  # fenced on expiry again: of two owners racing for a lease, only one wins
        SchedulerLease.objects.filter(tenant_id__in=taken, expires_at__lt=Now()).update(
            owner=owner, acquired_at=Now(), expires_at=Now() + _ttl(), serving_since=None
        )
    for tenant_id in free:
        if tenant_id not in rows:
            _create(tenant_id, owner)
    return held(tenant_ids, owner)


def _create(tenant_id: int, owner: str) -> None:
    try:
        with transaction.atomic():
            SchedulerLease.objects.create(
                tenant_id=tenant_id, owner=owner, acquired_at=Now(), expires_at=Now() + _ttl()
            )
    except IntegrityError:  # another supervisor created it first
        pass


def mark_serving(tenant_ids: list[int], owner: str, serving: bool = True) -> None:
    """Record that `owner`'s tenant process has started scheduling these tenants (or, with serving=False,
    that none does until a new one starts)."""
    SchedulerLease.objects.filter(tenant_id__in=tenant_ids, owner=owner).update(
        serving_since=Now() if serving else None
    )


def serving(tenant_id: int) -> bool:
    """Whether a scheduler process holds the tenant's lease and has started scheduling it."""
    return SchedulerLease.objects.filter(
        tenant_id=tenant_id, expires_at__gte=Now(), serving_since__isnull=False
    ).exists()


def held(tenant_ids: list[int], owner: str) -> list[int]:
    """The tenants among these of which `owner` holds a valid lease right now, in the given order."""
    valid = set(
        SchedulerLease.objects.filter(
            tenant_id__in=tenant_ids, owner=owner, expires_at__gte=Now()
        ).values_list("tenant_id", flat=True)
    )
    return [tenant_id for tenant_id in tenant_ids if tenant_id in valid]


def holds(tenant_id: int, owner: str) -> bool:
    """Does `owner` hold a valid lease on the tenant right now?"""
    return held([tenant_id], owner) == [tenant_id]


def release(owner: str, tenant_ids: list[int] | None = None) -> None:
    """Give up leases (at shutdown, or tenants no longer served) so another supervisor takes them at once."""
    leases = SchedulerLease.objects.filter(owner=owner)
    if tenant_ids is not None:
        leases = leases.filter(tenant_id__in=tenant_ids)
    leases.delete()
