"""createtenant and adduser: the admin commands, and their clear errors."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from tenants.models import Membership, Tenant
from tenants.roles import Role


def test_createtenant_with_quotas(db):
    call_command("createtenant", "data-eng", "--name", "Data Engineering", "--max-active-tasks", "8")
    tenant = Tenant.objects.get(slug="data-eng")
    assert (tenant.name, tenant.max_active_tasks, tenant.status) == ("Data Engineering", 8, "active")


@pytest.mark.parametrize("slug", ["Bad Slug", "-leading", "x" * 60, "a/b"])
def test_createtenant_rejects_bad_slugs(db, slug):
    with pytest.raises(CommandError, match="slug"):
        call_command("createtenant", slug)
    assert not Tenant.objects.exists()


def test_createtenant_refuses_a_taken_slug(tenant):
    with pytest.raises(CommandError, match="already exists"):
        call_command("createtenant", tenant.slug)


def test_adduser_creates_then_attaches(tenant, other_tenant, monkeypatch):
    monkeypatch.setenv("TRADEWIND_USER_PASSWORD", "correct horse battery staple")
    call_command("adduser", "ada", "--tenant", tenant.slug, "--role", "op")
    call_command("adduser", "ada", "--tenant", other_tenant.slug, "--role", "viewer")
    memberships = {m.tenant.slug: m.role for m in Membership.objects.filter(user__username="ada")}
    assert memberships == {tenant.slug: Role.OP, other_tenant.slug: Role.VIEWER}
    assert Membership.objects.get(tenant=tenant).user.check_password("correct horse battery staple")


def test_adduser_errors_are_clear(tenant):
    with pytest.raises(CommandError, match="no tenant"):
        call_command("adduser", "ada", "--tenant", "nope", "--role", "op")
    with pytest.raises(CommandError, match="unknown role 'boss'"):
        call_command("adduser", "ada", "--tenant", tenant.slug, "--role", "boss")
    assert not Membership.objects.exists()
