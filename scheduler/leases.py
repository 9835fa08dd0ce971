"""Tenant ownership for scheduler HA: a lease row per tenant, renewed by its owner, taken over when stale.

Time is the database's, so the clocks of scheduler hosts never disagree about expiry. Overlap during a
takeover is harmless: every state write is fenced, so two schedulers can never run the same try twice.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Now

from scheduler.models import SchedulerLease


def _ttl() -> timedelta:
    return timedelta(seconds=settings.TRADEWIND_LEASE_SECONDS)


def acquire(tenant_id: int, owner: str) -> bool:
    """Take or renew the lease of a tenant; False while another owner's lease is still valid."""
    leases = SchedulerLease.objects.filter(tenant_id=tenant_id)
    renewed = leases.filter(owner=owner).update(expires_at=Now() + _ttl())
    if renewed:
        return True
    taken = leases.filter(expires_at__lt=Now()).update(
        owner=owner, acquired_at=Now(), expires_at=Now() + _ttl()
    )
    if taken:
        return True
    if leases.exists():
        return False
    try:
        with transaction.atomic():
            SchedulerLease.objects.create(
                tenant_id=tenant_id, owner=owner, acquired_at=Now(), expires_at=Now() + _ttl()
            )
    except IntegrityError:  # another supervisor created it first
        return False
    return True


def holds(tenant_id: int, owner: str) -> bool:
    """Does `owner` hold a valid lease on the tenant right now?"""
    return SchedulerLease.objects.filter(tenant_id=tenant_id, owner=owner, expires_at__gte=Now()).exists()


def release(owner: str, tenant_ids: list[int] | None = None) -> None:
    """Give up leases at shutdown so another supervisor takes the tenants at once."""
    leases = SchedulerLease.objects.filter(owner=owner)
    if tenant_ids is not None:
        leases = leases.filter(tenant_id__in=tenant_ids)
    leases.delete()
