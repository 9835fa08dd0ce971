"""Scheduler leases: one owner per tenant at a time, renewals, takeover of expired leases, limits."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from scheduler import leases
from scheduler.models import SchedulerLease

pytestmark = pytest.mark.django_db


def expire(owner: str) -> None:
    SchedulerLease.objects.filter(owner=owner).update(expires_at=timezone.now() - dt.timedelta(seconds=1))


def test_one_owner_per_tenant_until_its_lease_expires(tenant, other_tenant):
    ids = [tenant.pk, other_tenant.pk]
    assert leases.acquire_many(ids, "a") == ids
    assert leases.acquire_many(ids, "b") == []  # valid leases are never taken
    assert leases.acquire_many(ids, "a") == ids  # renewed
    expire("a")
    assert not leases.holds(tenant.pk, "a")
    assert leases.acquire_many(ids, "b") == ids  # taken over
    assert leases.acquire_many(ids, "a") == []


def test_a_limit_caps_how_many_tenants_an_owner_holds(tenant, other_tenant):
    ids = [tenant.pk, other_tenant.pk]
    assert leases.acquire_many(ids, "a", limit=1) == [tenant.pk]
    assert leases.acquire_many(ids, "b", limit=1) == [other_tenant.pk]
    assert leases.acquire_many(ids, "a", limit=1) == [tenant.pk]  # renewing does not take more


def test_a_released_lease_is_free_at_once(tenant):
    assert leases.acquire(tenant.pk, "a")
    leases.release("a")
    assert leases.acquire(tenant.pk, "b")
    assert leases.held([tenant.pk], "b") == [tenant.pk]


def test_a_lease_shows_whether_its_tenant_is_served_by_a_process_of_its_owner(tenant):
    assert leases.acquire(tenant.pk, "a")
    assert not leases.serving(tenant.pk)  # held, but no tenant process has started yet
    leases.mark_serving([tenant.pk], "b")  # not the owner: nothing changes
    assert not leases.serving(tenant.pk)
    leases.mark_serving([tenant.pk], "a")
    assert leases.serving(tenant.pk)
    leases.mark_serving([tenant.pk], "a", serving=False)  # its process died
    assert not leases.serving(tenant.pk)
    leases.mark_serving([tenant.pk], "a")
    expire("a")
    assert not leases.serving(tenant.pk)  # an expired lease serves nobody
    assert leases.acquire(tenant.pk, "b")
    assert not leases.serving(tenant.pk)  # taken over: the new owner's process has not started
