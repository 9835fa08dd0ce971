"""API tokens: hashed at rest, shown once, scoped to one tenant, capped, expiring, revocable, throttled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from tenants import services as tenant_services
from tenants.models import Membership
from tenants.roles import Role
from tradewind.accounts import services
from tradewind.accounts.actors import Actor
from tradewind.accounts.models import ApiToken
from tradewind.audit.models import AuditEntry
from tradewind.errors import Invalid


def api(tenant, path: str) -> str:
    return f"/t/{tenant.slug}/api/v1/{path}"


def test_token_is_stored_only_as_a_hash_and_shown_once(tenant, api_for):
    client = api_for(tenant, Role.USER)
    created = client.post(api(tenant, "tokens/"), {"name": "ci"}, format="json")
    assert created.status_code == 201
    raw = created.json()["token"]
    assert raw.startswith("twk_") and len(raw) > 40
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        rows = cursor.fetchall()
    assert len(rows) == 1 and raw not in repr(rows) and raw[4:] not in repr(rows)
    token = ApiToken.objects.get()
    assert token.digest == services.token_digest(raw) and raw.startswith(token.prefix)
    listed = client.get(api(tenant, "tokens/")).json()["results"]
    assert listed[0]["prefix"] == token.prefix and "token" not in listed[0]
    assert raw not in client.get(api(tenant, f"tokens/{token.pk}/")).content.decode()


def test_bearer_token_acts_as_its_user_without_session_or_csrf(tenant, token_for):
    client, _ = token_for(tenant, Role.OP)
    listed = client.get(api(tenant, "members/"))
    assert listed.status_code == 200
    created = client.post(api(tenant, "variables/"), {"key": "region", "value": "eu"}, format="json")
    assert created.status_code == 201  # no CSRF token needed: the request carries no session
    entry = AuditEntry.objects.for_tenant(tenant).filter(action="variable.set").get()
    assert entry.actor_kind == "token" and entry.actor_token_id == ApiToken.objects.get().pk


def test_bad_expired_and_revoked_tokens_answer_401(tenant, token_for, make_member):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer twk_not-a-real-token")
    assert client.get(api(tenant, "members/")).status_code == 401

    expiring, raw = token_for(tenant, Role.VIEWER, expires_at=timezone.now() + timedelta(hours=1))
    assert expiring.get(api(tenant, "members/")).status_code == 200
    ApiToken.objects.filter(digest=services.token_digest(raw)).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert expiring.get(api(tenant, "members/")).status_code == 401

    revoked, raw = token_for(tenant, Role.VIEWER)
    token = ApiToken.objects.get(digest=services.token_digest(raw))
    services.revoke_token(tenant=tenant, actor=Actor.system(), token=token)
    response = revoked.get(api(tenant, "members/"))
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    actions = set(AuditEntry.objects.for_tenant(tenant).values_list("action", flat=True))
    assert {"token.created", "token.used", "token.revoked"} <= actions


def test_expiry_must_be_in_the_future(tenant, make_member):
    user = make_member(tenant, Role.USER)
    with pytest.raises(Invalid):
        services.create_token(
            tenant=tenant,
            actor=Actor.for_user(user),
            user=user,
            name="x",
            expires_at=timezone.now() - timedelta(days=1),
        )


def test_token_for_tenant_a_is_not_found_on_tenant_b(tenant, other_tenant, token_for):
    client, raw = token_for(tenant, Role.ADMIN)
    user = ApiToken.objects.get(digest=services.token_digest(raw)).user
    tenant_services.add_member(tenant=other_tenant, user=user, role=Role.ADMIN)  # even as a member of B
    assert client.get(api(other_tenant, "members/")).status_code == 404
    assert client.get(api(tenant, "members/")).status_code == 200


def test_token_role_is_capped(tenant, token_for):
    client, raw = token_for(tenant, Role.ADMIN, cap=Role.VIEWER)
    assert client.get(api(tenant, "variables/")).status_code == 200
    assert (
        client.post(api(tenant, "variables/"), {"key": "k", "value": "v"}, format="json").status_code == 403
    )
    # ...and it cannot mint a stronger token for its user.
    stronger = client.post(api(tenant, "tokens/"), {"name": "x", "role": "admin"}, format="json")
    assert stronger.status_code == 403
    minted = client.post(api(tenant, "tokens/"), {"name": "y"}, format="json")
    assert minted.status_code == 201 and minted.json()["role_cap"] == "viewer"


def test_cap_above_the_members_role_is_refused(tenant, make_member):
    user = make_member(tenant, Role.USER)
    with pytest.raises(Invalid):
        services.create_token(
            tenant=tenant, actor=Actor.for_user(user), user=user, name="x", role_cap=Role.ADMIN
        )


def test_removed_member_loses_their_tokens(tenant, token_for, make_member):
    make_member(tenant, Role.ADMIN)
    client, raw = token_for(tenant, Role.OP)
    token = ApiToken.objects.get(digest=services.token_digest(raw))
    tenant_services.remove_member(membership=Membership.objects.get(user=token.user))
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert client.get(api(tenant, "members/")).status_code == 401


def test_last_used_is_recorded_and_token_use_audited_at_most_once_per_interval(tenant, token_for, settings):
    settings.TRADEWIND_TOKEN_USED_AUDIT_SECONDS = 3600
    client, raw = token_for(tenant, Role.VIEWER)
    for _ in range(3):
        assert client.get(api(tenant, "members/")).status_code == 200
    token = ApiToken.objects.get(digest=services.token_digest(raw))
    assert token.last_used_at is not None and token.last_used_ip == "127.0.0.1"
    assert AuditEntry.objects.for_tenant(tenant).filter(action="token.used").count() == 1


def test_each_token_is_throttled_separately(tenant, token_for, settings):
    settings.TRADEWIND_TOKEN_RATE = "3/min"
    first, _ = token_for(tenant, Role.VIEWER)
    second, _ = token_for(tenant, Role.VIEWER)
    statuses = [first.get(api(tenant, "members/")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert second.get(api(tenant, "members/")).status_code == 200
    limited = first.get(api(tenant, "members/"))
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0


def test_a_tokens_own_rate_overrides_the_default(tenant, token_for):
    client, _ = token_for(tenant, Role.VIEWER, rate="1/min")
    assert [client.get(api(tenant, "members/")).status_code for _ in range(2)] == [200, 429]


def test_admins_make_service_accounts_and_their_tokens(tenant, api_for):
    admin = api_for(tenant, Role.ADMIN)
    created = admin.post(api(tenant, "service-accounts/"), {"name": "etl", "role": "user"}, format="json")
    assert created.status_code == 201
    username = created.json()["username"]
    token = admin.post(api(tenant, "tokens/"), {"name": "etl", "username": username}, format="json")
    assert token.status_code == 201 and token.json()["kind"] == "service"
    robot = APIClient()
    robot.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['token']}")
    assert robot.post(api(tenant, "variables/"), {"key": "k", "value": "v"}, format="json").status_code == 403
    assert robot.get(api(tenant, "variables/")).status_code == 200
    assert not robot.login(username=username, password="")  # a service account cannot log in
    # A non-admin can neither create service accounts nor tokens for others.
    user = api_for(tenant, Role.OP)
    assert (
        user.post(
            api(tenant, "service-accounts/"), {"name": "x", "role": "viewer"}, format="json"
        ).status_code
        == 403
    )
    assert (
        user.post(api(tenant, "tokens/"), {"name": "x", "username": username}, format="json").status_code
        == 403
    )


def test_members_see_and_revoke_only_their_own_tokens_admins_everyones(tenant, api_for, token_for):
    _, raw = token_for(tenant, Role.USER)
    victim = ApiToken.objects.get(digest=services.token_digest(raw))
    other = api_for(tenant, Role.OP)
    assert other.get(api(tenant, "tokens/")).json()["count"] == 0
    assert other.delete(api(tenant, f"tokens/{victim.pk}/")).status_code == 404
    admin = api_for(tenant, Role.ADMIN)
    assert admin.get(api(tenant, "tokens/")).json()["count"] == 1
    assert admin.delete(api(tenant, f"tokens/{victim.pk}/")).status_code == 204
    victim.refresh_from_db()
    assert victim.revoked_at is not None


def test_tokens_page_shows_the_secret_once(tenant, browser_for):
    browser = browser_for(tenant, Role.VIEWER)
    page = browser.post(
        f"/t/{tenant.slug}/tokens/", {"name": "laptop", "role": "viewer", "expires_in_days": "30"}
    )
    assert page.status_code == 200
    token = ApiToken.objects.get()
    assert token.expires_at is not None and token.role_cap == Role.VIEWER
    assert b"twk_" in page.content
    again = browser.get(f"/t/{tenant.slug}/tokens/")
    assert token.prefix.encode() in again.content and page.content.count(b"twk_") > again.content.count(
        b"twk_"
    )
