"""The permission matrix for "websocket join" (issue 5): every role × {tenant stream, DAG stream} × the
member's DAG scope (all DAGs, limited to grants with or without a grant on the DAG) → allowed or refused,
through real handshakes, for a session user and for an Admin's token capped at the role. The expectation
is written out, and can() must agree with it: the consumers ask nothing but can()."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from tenants.models import Membership
from tenants.roles import MIN_ROLE, Role, can
from tests.live.helpers import dag_stream, live, open_stream, tenant_stream
from tradewind.live.access import CloseCode

pytestmark = pytest.mark.django_db(transaction=True)

STREAMS = ("tenant", "dag")
SCOPES = ("all_dags", "granted", "not_granted")
CASES = [(role, stream, scope) for role in Role for stream in STREAMS for scope in SCOPES]


def expected_join(role: Role, stream: str, scope: str) -> bool:
    """Any member may watch the tenant's stream (events of DAGs they may not see are filtered out); a DAG's
    stream needs the right to view that DAG."""
    return role >= MIN_ROLE["dag.view"] and (stream == "tenant" or scope != "not_granted")


def path_for(slug: str, stream: str) -> str:
    return tenant_stream(slug) if stream == "tenant" else dag_stream(slug, "matrix")


@pytest.mark.parametrize(
    ("role", "stream", "scope"), CASES, ids=[f"{r.name.lower()}-{s}-{g}" for r, s, g in CASES]
)
@live
async def test_session_member_join(tenant, make_member, make_dag, limit_to_grants, role, stream, scope):
    def setup():
        user = make_member(tenant, role)
        dag = make_dag(tenant, "matrix")
        if scope != "all_dags":
            limit_to_grants(user, tenant, *([dag] if scope == "granted" else []))
        membership = Membership.objects.select_related("user").get(user=user, tenant=tenant)
        return user, can(membership, "dag.view", dag if stream == "dag" else None)

    user, allowed_by_can = await database_sync_to_async(setup)()
    expected = expected_join(role, stream, scope)
    assert allowed_by_can is expected
    joined = await open_stream(path_for(tenant.slug, stream), user=user)
    assert (joined.connected, joined.code) == ((True, None) if expected else (False, CloseCode.NOT_FOUND))
    await joined.close()


TOKEN_CASES = [(role, stream) for role in Role for stream in STREAMS]


@pytest.mark.parametrize(
    ("role", "stream"), TOKEN_CASES, ids=[f"{r.name.lower()}-{s}" for r, s in TOKEN_CASES]
)
@live
async def test_admin_token_capped_at_role_join(tenant, make_member, make_dag, make_token, role, stream):
    def setup():
        admin = make_member(tenant, Role.ADMIN)
        make_dag(tenant, "matrix")
        return make_token(admin, tenant, cap=role)

    raw = await database_sync_to_async(setup)()
    joined = await open_stream(path_for(tenant.slug, stream), token=raw)
    assert joined.connected is expected_join(role, stream, "all_dags")
    await joined.close()


@pytest.mark.parametrize("stream", STREAMS)
@live
async def test_non_member_join_is_refused(tenant, other_tenant, make_member, make_dag, stream):
    def setup():
        make_dag(tenant, "matrix")
        return make_member(other_tenant, Role.ADMIN)

    outsider = await database_sync_to_async(setup)()
    joined = await open_stream(path_for(tenant.slug, stream), user=outsider)
    assert (joined.connected, joined.code) == (False, CloseCode.NOT_FOUND)
    await joined.close()
