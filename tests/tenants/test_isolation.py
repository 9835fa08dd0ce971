"""Tenant scoping: another tenant's objects answer 404 through every view; roles gate every action."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tenants.models import Membership, Tenant
from tenants.roles import Role
from tenants.scoping import TenantViewSet


def members_api(tenant: Tenant, pk: int | None = None) -> str:
    if pk is None:
        return reverse("member-list", kwargs={"tenant_slug": tenant.slug})
    return reverse("member-detail", kwargs={"tenant_slug": tenant.slug, "pk": pk})


def test_member_of_a_cannot_list_read_or_change_b(api_for, make_member, tenant, other_tenant):
    client = api_for(tenant, Role.ADMIN)
    victim = Membership.objects.get(user=make_member(other_tenant, Role.ADMIN))

    assert client.get(members_api(other_tenant)).status_code == 404
    assert client.get(members_api(other_tenant, victim.pk)).status_code == 404
    # The other tenant's id through our own tenant's URL is not found either.
    assert client.get(members_api(tenant, victim.pk)).status_code == 404
    assert client.patch(members_api(tenant, victim.pk), {"role": "viewer"}, format="json").status_code == 404
    assert client.delete(members_api(tenant, victim.pk)).status_code == 404
    victim.refresh_from_db()
    assert victim.role == Role.ADMIN


def test_list_shows_only_own_tenant_rows(api_for, make_member, tenant, other_tenant):
    client = api_for(tenant, Role.VIEWER)
    make_member(tenant, Role.USER, username="colleague")
    make_member(other_tenant, Role.USER, username="stranger")
    names = {row["username"] for row in client.get(members_api(tenant)).json()["results"]}
    assert "colleague" in names
    assert "stranger" not in names


def test_unknown_tenant_and_non_member_look_the_same(api_for, tenant, other_tenant, browser_for):
    client = api_for(tenant)
    unknown = client.get("/t/no-such-tenant/api/v1/members/")
    foreign = client.get(members_api(other_tenant))
    assert unknown.status_code == foreign.status_code == 404
    assert unknown.json() == foreign.json()
    browser = browser_for(tenant)
    assert browser.get(f"/t/{other_tenant.slug}/").status_code == 404
    assert browser.get(f"/t/{other_tenant.slug}/members/").status_code == 404


def test_ui_members_page_shows_only_own_tenant(browser_for, make_member, tenant, other_tenant):
    make_member(other_tenant, Role.USER, username="stranger")
    page = browser_for(tenant, Role.ADMIN).get(f"/t/{tenant.slug}/members/")
    assert page.status_code == 200
    assert b"stranger" not in page.content


def test_ui_cannot_change_another_tenants_member(browser_for, make_member, tenant, other_tenant):
    victim = Membership.objects.get(user=make_member(other_tenant, Role.VIEWER))
    response = browser_for(tenant, Role.ADMIN).post(
        f"/t/{tenant.slug}/members/", {"membership": victim.pk, "role": "Admin"}
    )
    assert response.status_code == 404
    victim.refresh_from_db()
    assert victim.role == Role.VIEWER


@pytest.mark.parametrize(
    ("role", "expected"), [(Role.VIEWER, 403), (Role.USER, 403), (Role.OP, 403), (Role.ADMIN, 200)]
)
def test_changing_roles_needs_admin(api_for, make_member, tenant, role, expected):
    target = Membership.objects.get(user=make_member(tenant, Role.VIEWER))
    response = api_for(tenant, role).patch(members_api(tenant, target.pk), {"role": "op"}, format="json")
    assert response.status_code == expected
    target.refresh_from_db()
    assert target.role == (Role.OP if expected == 200 else Role.VIEWER)


@pytest.mark.parametrize("role", list(Role))
def test_every_role_can_read_members(api_for, tenant, role):
    assert api_for(tenant, role).get(members_api(tenant)).status_code == 200


def test_ui_role_check_refuses_viewer_changes(browser_for, make_member, tenant):
    target = Membership.objects.get(user=make_member(tenant, Role.VIEWER))
    response = browser_for(tenant, Role.VIEWER).post(
        f"/t/{tenant.slug}/members/", {"membership": target.pk, "role": "Admin"}
    )
    assert response.status_code == 403
    target.refresh_from_db()
    assert target.role == Role.VIEWER


def test_last_admin_cannot_be_demoted_or_removed(api_for, tenant):
    client = api_for(tenant, Role.ADMIN)
    me = Membership.objects.for_tenant(tenant).get(role=Role.ADMIN)
    response = client.patch(members_api(tenant, me.pk), {"role": "viewer"}, format="json")
    assert response.status_code == 409
    assert "at least one admin" in response.json()["detail"]
    assert client.delete(members_api(tenant, me.pk)).status_code == 409


def test_invalid_role_payload_is_a_clear_400(api_for, make_member, tenant):
    target = Membership.objects.get(user=make_member(tenant, Role.VIEWER))
    response = api_for(tenant, Role.ADMIN).patch(
        members_api(tenant, target.pk), {"role": "boss"}, format="json"
    )
    assert response.status_code == 400
    assert "role" in response.json()


def test_suspended_tenant_is_refused_with_a_clear_message(api_for, browser_for, tenant):
    client, browser = api_for(tenant, Role.ADMIN), browser_for(tenant, Role.ADMIN)
    tenant.status = Tenant.Status.SUSPENDED
    tenant.save()
    api = client.get(members_api(tenant))
    assert api.status_code == 403
    assert "suspended" in api.json()["detail"]
    page = browser.get(f"/t/{tenant.slug}/")
    assert page.status_code == 403
    assert b"suspended" in page.content


def test_anonymous_is_sent_to_login_and_api_answers_401(client, tenant):
    page = client.get(f"/t/{tenant.slug}/")
    assert page.status_code == 302
    assert page["Location"].startswith("/login/")
    assert client.get(members_api(tenant)).status_code == 401


def test_user_in_two_tenants_sees_and_switches_between_both(make_member, tenant, other_tenant):
    from django.test import Client

    user = make_member(tenant, Role.USER, username="both")
    make_member(other_tenant, Role.VIEWER, username="both")
    browser = Client()
    browser.force_login(user)
    landing = browser.get("/").content.decode()
    assert "/t/acme/" in landing
    assert "/t/globex/" in landing
    assert browser.get("/t/acme/").status_code == 200
    assert browser.get("/t/globex/").status_code == 200


def test_scoped_viewsets_cannot_override_the_scoping():
    with pytest.raises(TypeError, match="scope_queryset"):

        class Leaky(TenantViewSet):
            def get_queryset(self):
                return Membership.objects.all()
