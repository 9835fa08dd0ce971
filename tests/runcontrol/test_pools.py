"""Pools: create, change and delete them; the default pool always exists and cannot be deleted."""

from __future__ import annotations

import pytest

from scheduler import services
from scheduler.models import Pool
from tests.runcontrol.helpers import ACTOR
from tradewind.audit.models import AuditEntry
from tradewind.errors import Invalid, NotFound

pytestmark = pytest.mark.django_db


def test_set_pool_creates_then_updates_it(tenant) -> None:
    pool = services.set_pool(tenant=tenant, actor=ACTOR, name="db", slots=4, description="the database")
    assert (pool.name, pool.slots, pool.description, pool.include_deferred) == (
        "db",
        4,
        "the database",
        False,
    )
    pool = services.set_pool(tenant=tenant, actor=ACTOR, name="db", slots=-1, include_deferred=True)
    assert Pool.objects.for_tenant(tenant).get(name="db").slots == -1 and pool.include_deferred
    entries = list(AuditEntry.objects.filter(tenant_id=tenant.pk, action="pool.changed").order_by("seq"))
    assert entries[0].before is None and entries[0].after["slots"] == 4
    assert entries[1].before["slots"] == 4 and entries[1].after["slots"] == -1


@pytest.mark.parametrize(("name", "slots"), [("", 1), (" ", 1), ("x" * 251, 1), ("p", -2), ("p", True)])
def test_set_pool_refuses_bad_values(tenant, name, slots) -> None:
    with pytest.raises(Invalid):
        services.set_pool(tenant=tenant, actor=ACTOR, name=name, slots=slots)


def test_pools_are_per_tenant(tenant, other_tenant) -> None:
    services.set_pool(tenant=tenant, actor=ACTOR, name="db", slots=4)
    theirs = services.set_pool(tenant=other_tenant, actor=ACTOR, name="db", slots=9)
    assert Pool.objects.for_tenant(tenant).get(name="db").slots == 4
    with pytest.raises(NotFound):
        services.delete_pool(tenant=tenant, actor=ACTOR, pool=theirs)
    assert Pool.objects.filter(pk=theirs.pk).exists()


def test_delete_pool_but_never_the_default_pool(tenant) -> None:
    pool = services.set_pool(tenant=tenant, actor=ACTOR, name="db", slots=4)
    services.delete_pool(tenant=tenant, actor=ACTOR, pool=pool)
    assert not Pool.objects.filter(pk=pool.pk).exists()
    assert AuditEntry.objects.filter(tenant_id=tenant.pk, action="pool.deleted").get().before["name"] == "db"
    default = services.ensure_default_pool(tenant)
    assert default.name == "default_pool" and default.slots == 128
    assert services.ensure_default_pool(tenant).pk == default.pk
    with pytest.raises(Invalid, match="default_pool"):
        services.delete_pool(tenant=tenant, actor=ACTOR, pool=default)
    changed = services.set_pool(tenant=tenant, actor=ACTOR, name="default_pool", slots=8)
    assert changed.pk == default.pk and changed.slots == 8
