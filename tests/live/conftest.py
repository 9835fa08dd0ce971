"""Fixtures for the live-stream tests: the in-memory channel layer unless a test asks for Redis, DAGs with
real versions (so runs can be created through the services), members and tokens."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from channels.layers import get_channel_layer

from scheduler.models import Dag
from tenants.models import Membership, Tenant
from tenants.roles import Role
from tests.factories import make_dag_version
from tradewind.accounts import grants
from tradewind.accounts import services as accounts
from tradewind.accounts.actors import Actor
from tradewind.sdk import DAG
from tradewind.sdk.operators.empty import EmptyOperator

SYSTEM = Actor.system("tests")


@pytest.fixture(autouse=True)
def memory_layer(settings) -> None:
    """Every live test starts on a fresh in-memory channel layer (the settings change resets Channels'
    cached layers)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def redis_layer(memory_layer, settings) -> str:
    """The Redis channel layer on TEST_REDIS_URL (E4's database: redis://127.0.0.1:6379/4), emptied."""
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("Redis is not reachable (CI sets REQUIRE_SERVICES=1, which makes this a failure)")
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [redis_url]}}
    }
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter("asgi*"):
        client.delete(key)
    client.close()
    assert get_channel_layer().__class__.__name__ == "RedisChannelLayer"
    return redis_url


def one_task_dag(dag_id: str) -> DAG:
    with DAG(dag_id, schedule=None) as dag:
        EmptyOperator(task_id="only")
    return dag


@pytest.fixture
def make_dag(db) -> Callable[[Tenant, str], Dag]:
    """make_dag(tenant, dag_id) -> a DAG of that tenant with an active, runnable version."""

    def make(tenant: Tenant, dag_id: str = "etl") -> Dag:
        return make_dag_version(tenant, one_task_dag(dag_id)).dag

    return make


@pytest.fixture
def limit_to_grants() -> Callable[..., Membership]:
    """limit_to_grants(user, tenant, *granted_dags) -> the membership, now limited to those DAGs."""

    def limit(user, tenant: Tenant, *granted: Dag) -> Membership:
        membership = Membership.objects.get(user=user, tenant=tenant)
        grants.set_grants_only(tenant=tenant, actor=SYSTEM, membership=membership, grants_only=True)
        for dag in granted:
            grants.set_grant(tenant=tenant, actor=SYSTEM, dag=dag, perms=["view_dag"], user=user)
        return membership

    return limit


@pytest.fixture
def make_token() -> Callable[..., str]:
    """make_token(user, tenant, cap=None, **kwargs) -> a raw API token of that member."""

    def make(user, tenant: Tenant, cap: Role | None = None, **kwargs: object) -> str:
        _, raw = accounts.create_token(
            tenant=tenant, actor=Actor.for_user(user), user=user, name="live", role_cap=cap, **kwargs
        )
        return raw

    return make
