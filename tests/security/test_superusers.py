"""Platform superusers manage tenants in the admin; inside a tenant they are nobody special, and audited."""

from __future__ import annotations

from django.test import Client

from tenants import services
from tenants.models import Tenant
from tenants.roles import Role
from tradewind.audit.models import AuditEntry


def superuser_client(db) -> tuple[Client, object]:
    user, _ = services.ensure_user(username="root", password="a-long-test-password", is_superuser=True)
    client = Client()
    client.force_login(user)
    return client, user


def test_superuser_without_membership_cannot_enter_a_tenant(tenant, db):
    client, _ = superuser_client(db)
    assert client.get(f"/t/{tenant.slug}/").status_code == 404
    assert client.get(f"/t/{tenant.slug}/api/v1/variables/").status_code == 404
    assert client.get(f"/t/{tenant.slug}/connections/").status_code == 404


def test_superuser_member_acts_with_their_role_only(tenant, db):
    client, user = superuser_client(db)
    services.add_member(tenant=tenant, user=user, role=Role.VIEWER)
    assert client.get(f"/t/{tenant.slug}/api/v1/variables/").status_code == 200
    response = client.post(f"/t/{tenant.slug}/variables/", {"key": "k", "value": "v"})
    assert response.status_code == 403


def test_admin_changes_are_audited_in_the_tenants_chain(db):
    client, user = superuser_client(db)
    response = client.post(
        "/admin/tenants/tenant/add/",
        {
            "slug": "initech",
            "name": "Initech",
            "status": "active",
            "max_active_tasks": 32,
            "max_active_runs": 16,
            "max_dags": 500,
            "max_bundle_bytes": 1000000,
            "-1-TOTAL_FORMS": 0,
            "-1-INITIAL_FORMS": 0,  # the inline of memberships
        },
    )
    assert response.status_code == 302, response.content[:2000]
    tenant = Tenant.objects.get(slug="initech")
    entry = AuditEntry.objects.for_tenant(tenant).get(action="admin.change")
    assert entry.actor_kind == "user" and entry.actor_user_id == user.pk
    assert entry.detail["operation"] == "added" and entry.detail["object_type"] == "tenants.tenant"
