"""Fixtures for the security suite: DAG rows, token clients, a running fake Vault."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from rest_framework.test import APIClient

from scheduler.models import Bundle, Dag
from tenants.models import Tenant
from tenants.roles import Role
from tests.vault.server import FakeVault
from tradewind.accounts import services as accounts
from tradewind.accounts.actors import Actor
from tradewind.secrets import vault as vault_backend


@pytest.fixture
def make_dag(db) -> Callable[[Tenant, str], Dag]:
    """make_dag(tenant, dag_id) -> a DAG row of that tenant (no files: grants only need the row)."""

    def make(tenant: Tenant, dag_id: str) -> Dag:
        bundle, _ = Bundle.objects.get_or_create(tenant=tenant, name="default")
        return Dag.objects.create(tenant=tenant, dag_id=dag_id, bundle=bundle, fileloc=f"{dag_id}.py")

    return make


@pytest.fixture
def token_for(make_member) -> Callable[..., tuple[APIClient, str]]:
    """token_for(tenant, role, cap=None, **token_kwargs) -> (an API client sending a new member's bearer
    token and no session, the raw token)."""

    def make(tenant: Tenant, role: Role = Role.VIEWER, cap: Role | None = None, **kwargs: object):
        user = make_member(tenant, role)
        _, raw = accounts.create_token(
            tenant=tenant, actor=Actor.for_user(user), user=user, name="test", role_cap=cap, **kwargs
        )
        client = APIClient(enforce_csrf_checks=True)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client, raw

    return make


@pytest.fixture
def vault(settings) -> Iterator[FakeVault]:
    """A running fake Vault (tests/vault/server.py) that the settings point at, read through real hvac."""
    server = FakeVault().start()
    settings.TRADEWIND_VAULT_URL = server.url
    settings.TRADEWIND_VAULT_TOKEN = server.root_token
    settings.TRADEWIND_VAULT_TIMEOUT = 2
    vault_backend.clear_cache()
    try:
        yield server
    finally:
        server.stop()
        vault_backend.clear_cache()
