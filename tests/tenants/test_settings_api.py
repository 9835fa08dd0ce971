"""The tenant settings resource: members read it, admins rename the tenant; quotas stay the platform's."""

from __future__ import annotations

from tenants.roles import Role
from tradewind.audit.models import AuditEntry


def test_admin_renames_the_tenant_and_it_is_audited(api_for, tenant):
    response = api_for(tenant, Role.ADMIN).patch(
        f"/t/{tenant.slug}/api/v1/tenant/", {"name": "Acme Data"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Acme Data"
    tenant.refresh_from_db()
    assert tenant.name == "Acme Data"
    entry = AuditEntry.objects.for_tenant(tenant).filter(action="tenant.changed").latest("seq")
    assert entry.after == {"name": "Acme Data"}


def test_quotas_cannot_be_changed_by_tenant_admins(api_for, tenant):
    client = api_for(tenant, Role.ADMIN)
    response = client.patch(
        f"/t/{tenant.slug}/api/v1/tenant/", {"name": "Acme", "max_active_tasks": 10_000}, format="json"
    )
    assert response.status_code == 200
    tenant.refresh_from_db()
    assert tenant.max_active_tasks != 10_000


def test_blank_name_is_a_clear_400_and_changes_nothing(api_for, tenant):
    response = api_for(tenant, Role.ADMIN).patch(
        f"/t/{tenant.slug}/api/v1/tenant/", {"name": "  "}, format="json"
    )
    assert response.status_code == 400
    tenant.refresh_from_db()
    assert tenant.name == "Acme"


def test_viewer_reads_but_cannot_rename_and_others_see_nothing(api_for, tenant, other_tenant):
    viewer = api_for(tenant, Role.VIEWER)
    body = viewer.get(f"/t/{tenant.slug}/api/v1/tenant/").json()
    assert body["slug"] == tenant.slug
    assert body["max_active_tasks"] == tenant.max_active_tasks
    assert viewer.patch(f"/t/{tenant.slug}/api/v1/tenant/", {"name": "X"}, format="json").status_code == 403
    assert viewer.get(f"/t/{other_tenant.slug}/api/v1/tenant/").status_code == 404
