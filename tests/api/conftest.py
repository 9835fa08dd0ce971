"""Fixtures for the REST API tests: a bundle and log store the sandbox can reach, the DAG "etl" with a run,
and members of any role (optionally limited to granted DAGs). Helpers live in tests/api/helpers.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from scheduler.models import DagRun, DagVersion
from tenants.models import Membership, Tenant
from tenants.roles import Role
from tests.api.helpers import ACTOR, etl_dag, store_dag
from tests.factories import make_run
from tests.scheduler.engine import START
from tradewind.accounts import grants


@pytest.fixture(autouse=True)
def _sandbox_storage(storage: Path) -> Path:
    """Every test here may run real sandboxed children: see the root conftest's `storage`."""
    return storage


@pytest.fixture
def etl(tenant: Tenant) -> DagVersion:
    """The tenant's DAG "etl", stored as an active version."""
    return store_dag(tenant, etl_dag())


@pytest.fixture
def etl_run(tenant: Tenant, etl: DagVersion) -> DagRun:
    """A queued manual run "r1" of "etl" with its task instances."""
    return make_run(tenant, etl, logical_date=START, run_id="r1")


@pytest.fixture
def member_client(make_member) -> Callable[..., tuple[APIClient, Membership]]:
    """member_client(tenant, role, grants_only=False) -> (an API client logged in as a new member, its
    membership)."""

    def make(
        tenant: Tenant, role: Role = Role.VIEWER, *, grants_only: bool = False
    ) -> tuple[APIClient, Membership]:
        user = make_member(tenant, role)
        membership = Membership.objects.get(user=user, tenant=tenant)
        if grants_only:
            membership = grants.set_grants_only(
                tenant=tenant, actor=ACTOR, membership=membership, grants_only=True
            )
        client = APIClient()
        client.force_login(user)
        return client, membership

    return make
