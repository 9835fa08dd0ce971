"""Fixtures shared by the whole suite: two tenants everywhere, members of any role, clients for them."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client
from rest_framework.test import APIClient

from tenants import services
from tenants.models import Tenant
from tenants.roles import Role
from workers.sandbox import templates

_serial = itertools.count(1)


@pytest.fixture
def tenant(db) -> Tenant:
    return services.create_tenant(slug="acme", name="Acme")


@pytest.fixture
def other_tenant(db) -> Tenant:
    return services.create_tenant(slug="globex", name="Globex")


@pytest.fixture
def make_member(db) -> Callable[..., AbstractUser]:
    """make_member(tenant, role) -> a new user with that role in that tenant."""

    def make(tenant: Tenant, role: Role = Role.VIEWER, username: str | None = None) -> AbstractUser:
        name = username or f"{role.name.lower()}{next(_serial)}"
        user, _ = services.ensure_user(username=name, password="a-long-test-password")
        services.add_member(tenant=tenant, user=user, role=role)
        return user

    return make


@pytest.fixture
def api_for(make_member) -> Callable[[Tenant, Role], APIClient]:
    """api_for(tenant, role) -> an API client logged in as a new member with that role."""

    def make(tenant: Tenant, role: Role = Role.VIEWER) -> APIClient:
        client = APIClient()
        client.force_login(make_member(tenant, role))
        return client

    return make


@pytest.fixture
def browser_for(make_member) -> Callable[[Tenant, Role], Client]:
    """browser_for(tenant, role) -> a Django test client logged in as a new member with that role."""

    def make(tenant: Tenant, role: Role = Role.VIEWER) -> Client:
        client = Client()
        client.force_login(make_member(tenant, role))
        return client

    return make


@pytest.fixture(autouse=True)
def no_lingering_templates() -> Iterator[None]:
    """The sandbox templates a test's tasks forked from (processes of its tenant's uid) end with the test."""
    yield
    templates.stop_all()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """Tests create many users; the production hasher's deliberate slowness would dominate the suite."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def storage(settings) -> Iterator[Path]:
    """Bundles and task logs in a fresh directory that sandboxed children (other uids when the suite runs
    as root) can reach: the suite's data directory is private to its owner, as a deployment's is."""
    root = Path(tempfile.mkdtemp(prefix="tw-store-"))
    os.chmod(root, 0o755)
    settings.BUNDLE_ROOT = root / "bundles"
    settings.LOG_ROOT = root / "logs"
    settings.TRADEWIND_PARSE_TIMEOUT = 10
    try:
        yield root
    finally:
        for directory, _dirs, _files in os.walk(root):
            os.chmod(directory, 0o755)  # bundles are stored read-only
        shutil.rmtree(root, ignore_errors=True)
