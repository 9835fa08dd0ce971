"""Fixtures shared by the whole suite: two tenants everywhere, members of any role, clients for them."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client
from rest_framework.test import APIClient

from tenants import services
from tenants.models import Tenant
from tenants.roles import Role

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
def fast_password_hashing(settings) -> None:
    """Tests create many users; the production hasher's deliberate slowness would dominate the suite."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
