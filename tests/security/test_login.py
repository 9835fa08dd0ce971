"""Login throttling: failures counted per username and client IP, lockout, audit of every attempt."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from tenants import services
from tradewind.audit.models import PLATFORM_CHAIN, AuditEntry

PASSWORD = "a-long-test-password"


@pytest.fixture
def user(db, settings):
    settings.TRADEWIND_LOGIN_MAX_FAILURES = 3
    settings.TRADEWIND_LOGIN_LOCKOUT_SECONDS = 60
    # A fresh name each run: the lockout lives in the shared cache (Redis), not in the test database.
    account, _ = services.ensure_user(username=f"alice-{uuid.uuid4().hex[:8]}", password=PASSWORD)
    return account


def login(username: str, password: str, ip: str = "10.0.0.1"):
    return Client(REMOTE_ADDR=ip).post("/login/", {"username": username, "password": password})


def platform_actions() -> list[str]:
    return list(
        AuditEntry.objects.filter(chain=PLATFORM_CHAIN).order_by("seq").values_list("action", flat=True)
    )


def test_successful_login_is_audited(user):
    assert login(user.username, PASSWORD).status_code == 302
    entry = AuditEntry.objects.filter(chain=PLATFORM_CHAIN, action="login.succeeded").get()
    assert entry.actor_user_id == user.pk and entry.ip == "10.0.0.1"


def test_too_many_failures_lock_the_username_out_from_that_ip(user):
    for _ in range(3):
        page = login(user.username, "wrong")
        assert page.status_code == 200 and b"did not match" in page.content
    locked = login(user.username, PASSWORD)  # even the right password is refused now
    assert locked.status_code == 200 and b"Too many failed logins" in locked.content
    assert "_auth_user_id" not in locked.client.session
    assert login(user.username, PASSWORD, ip="10.0.0.2").status_code == 302  # another client is not locked
    actions = platform_actions()
    assert actions.count("login.failed") == 3 and actions.count("login.locked_out") == 1
    failed = AuditEntry.objects.filter(chain=PLATFORM_CHAIN, action="login.failed").first()
    assert failed.actor_kind == "anonymous" and failed.detail["username"] == user.username
    assert "wrong" not in repr(list(AuditEntry.objects.values_list("detail", flat=True)))


def test_lockout_applies_to_the_admin_login_too(user):
    user.is_staff = user.is_superuser = True
    user.save()
    for _ in range(3):
        login(user.username, "wrong")
    client = Client(REMOTE_ADDR="10.0.0.1")
    client.post("/admin/login/", {"username": user.username, "password": PASSWORD})
    assert "_auth_user_id" not in client.session


def test_a_success_resets_the_failure_count(user):
    for _ in range(2):
        login(user.username, "wrong")
    assert login(user.username, PASSWORD).status_code == 302
    for _ in range(2):
        login(user.username, "wrong")
    assert login(user.username, PASSWORD).status_code == 302
