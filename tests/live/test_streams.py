"""The live streams end to end on the in-memory channel layer: real handshakes against tradewind.asgi,
real runs created through scheduler.services (events published on commit), real tokens and grants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from tenants import services as tenants
from tenants.models import Tenant
from tenants.roles import Role
from tests.factories import make_run
from tests.live.helpers import dag_stream, live, open_stream, tenant_stream
from tradewind.accounts import grants
from tradewind.accounts import services as accounts
from tradewind.accounts.actors import Actor
from tradewind.accounts.models import ApiToken
from tradewind.live import consumers
from tradewind.live.access import CloseCode
from tradewind.live.groups import tenant_group

pytestmark = pytest.mark.django_db(transaction=True)

SYSTEM = Actor.system("tests")


def run_of(dag):
    """A new run of `dag` created through scheduler.services.create_dag_run (its event is published when
    the service's transaction commits)."""
    return make_run(dag.tenant, dag.active_version)


def run_event(run, slug: str) -> dict:
    return {
        "type": "event",
        "tenant": slug,
        "dag_id": run.dag.dag_id,
        "run_id": run.run_id,
        "task_id": None,
        "map_index": None,
        "state": "queued",
        "try_number": None,
    }


@live
async def test_a_member_receives_the_event_of_a_run_created_through_the_services(
    tenant, make_member, make_dag
):
    user = await database_sync_to_async(make_member)(tenant, Role.VIEWER)
    dag = await database_sync_to_async(make_dag)(tenant, "etl")
    stream = await open_stream(tenant_stream(tenant.slug), user=user)
    assert stream.connected
    run = await database_sync_to_async(run_of)(dag)
    assert await stream.next_event() == run_event(run, "acme")
    assert await stream.nothing_more()
    await stream.close()


@live
async def test_another_tenants_event_never_reaches_the_stream(tenant, other_tenant, make_member, make_dag):
    user = await database_sync_to_async(make_member)(tenant, Role.ADMIN)
    ours = await database_sync_to_async(make_dag)(tenant, "etl")
    theirs = await database_sync_to_async(make_dag)(other_tenant, "etl")  # the same dag_id in both tenants
    tenant_wide = await open_stream(tenant_stream(tenant.slug), user=user)
    one_dag = await open_stream(dag_stream(tenant.slug, "etl"), user=user)
    await database_sync_to_async(run_of)(theirs)  # sent first: it would arrive first
    run = await database_sync_to_async(run_of)(ours)
    for stream in (tenant_wide, one_dag):
        assert await stream.next_event() == run_event(run, "acme")
        assert await stream.nothing_more()
        await stream.close()


@live
async def test_a_dag_stream_carries_only_its_dag(tenant, make_member, make_dag):
    user = await database_sync_to_async(make_member)(tenant, Role.VIEWER)
    etl = await database_sync_to_async(make_dag)(tenant, "etl")
    other = await database_sync_to_async(make_dag)(tenant, "report")
    stream = await open_stream(dag_stream(tenant.slug, "etl"), user=user)
    assert stream.connected
    await database_sync_to_async(run_of)(other)
    run = await database_sync_to_async(run_of)(etl)
    assert await stream.next_event() == run_event(run, "acme")
    assert await stream.nothing_more()
    await stream.close()


@live
async def test_dag_ids_that_are_not_valid_group_names_still_stream(tenant, make_member, make_dag):
    user = await database_sync_to_async(make_member)(tenant, Role.VIEWER)
    dag = await database_sync_to_async(make_dag)(tenant, "données_" + "x" * 120)
    stream = await open_stream(dag_stream(tenant.slug, dag.dag_id), user=user)
    assert stream.connected
    run = await database_sync_to_async(run_of)(dag)
    assert await stream.next_event() == run_event(run, "acme")
    await stream.close()


@live
async def test_task_instance_events_carry_task_map_index_and_try(tenant, make_member, make_dag):
    from scheduler import services

    user = await database_sync_to_async(make_member)(tenant, Role.VIEWER)
    dag = await database_sync_to_async(make_dag)(tenant, "etl")
    run = await database_sync_to_async(run_of)(dag)
    stream = await open_stream(dag_stream(tenant.slug, "etl"), user=user)
    await database_sync_to_async(services.schedule_run)(run)
    received = [await stream.next_event(), await stream.next_event()]
    assert {"type": "event", "tenant": "acme", "dag_id": "etl", "run_id": run.run_id} | {
        "task_id": "only",
        "map_index": -1,
        "state": "scheduled",
        "try_number": 0,
    } in received
    assert [e["state"] for e in received if e["task_id"] is None] == ["running"]
    await stream.close()


@live
async def test_grants_only_member_receives_only_granted_dags_on_the_tenant_stream(
    tenant, make_member, make_dag, limit_to_grants
):
    user = await database_sync_to_async(make_member)(tenant, Role.USER)
    granted = await database_sync_to_async(make_dag)(tenant, "granted")
    hidden = await database_sync_to_async(make_dag)(tenant, "hidden")
    await database_sync_to_async(limit_to_grants)(user, tenant, granted)
    stream = await open_stream(tenant_stream(tenant.slug), user=user)
    assert stream.connected
    await database_sync_to_async(run_of)(hidden)
    run = await database_sync_to_async(run_of)(granted)
    assert await stream.next_event() == run_event(run, "acme")
    assert await stream.nothing_more()
    await stream.close()


@live
async def test_a_grant_taken_back_stops_the_events(
    tenant, make_member, make_dag, limit_to_grants, monkeypatch
):
    monkeypatch.setattr(consumers, "GRANT_RECHECK_SECONDS", 0.0)
    user = await database_sync_to_async(make_member)(tenant, Role.VIEWER)
    dag = await database_sync_to_async(make_dag)(tenant, "etl")
    await database_sync_to_async(limit_to_grants)(user, tenant, dag)
    stream = await open_stream(dag_stream(tenant.slug, "etl"), user=user)
    assert stream.connected
    run = await database_sync_to_async(run_of)(dag)
    assert await stream.next_event() == run_event(run, "acme")
    await database_sync_to_async(grants.set_grant)(tenant=tenant, actor=SYSTEM, dag=dag, perms=[], user=user)
    await database_sync_to_async(run_of)(dag)
    assert await stream.nothing_more()
    await stream.close()


@live
async def test_a_members_session_cookie_or_token_opens_the_stream(tenant, make_member, make_dag, make_token):
    user = await database_sync_to_async(make_member)(tenant, Role.VIEWER)
    dag = await database_sync_to_async(make_dag)(tenant, "etl")
    raw = await database_sync_to_async(make_token)(user, tenant)
    by_header = await open_stream(tenant_stream(tenant.slug), token=raw)
    by_query = await open_stream(dag_stream(tenant.slug, "etl"), token=raw, token_in="query")
    assert (by_header.connected, by_query.connected) == (True, True)
    run = await database_sync_to_async(run_of)(dag)
    for stream in (by_header, by_query):
        assert await stream.next_event() == run_event(run, "acme")
        await stream.close()
    token = await database_sync_to_async(ApiToken.objects.get)(user=user)
    assert token.last_used_at is not None


@pytest.mark.parametrize("token_in", ["header", "query"])
@pytest.mark.parametrize("spoil", ["expired", "revoked", "unknown", "inactive_user"])
@live
async def test_an_unusable_token_is_refused_even_with_a_valid_session(
    tenant, make_member, make_token, spoil, token_in
):
    user = await database_sync_to_async(make_member)(tenant, Role.ADMIN)

    def spoiled_token() -> str:
        raw = make_token(user, tenant, expires_at=timezone.now() + timedelta(hours=1))
        token = ApiToken.objects.get(user=user)
        if spoil == "expired":
            ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        elif spoil == "revoked":
            accounts.revoke_token(tenant=tenant, actor=SYSTEM, token=token)
        elif spoil == "unknown":
            return raw[:-4] + "AAAA"
        else:
            type(user).objects.filter(pk=user.pk).update(is_active=False)
        return raw

    raw = await database_sync_to_async(spoiled_token)()
    stream = await open_stream(tenant_stream(tenant.slug), user=user, token=raw, token_in=token_in)
    assert (stream.connected, stream.code) == (False, CloseCode.UNAUTHENTICATED)


@live
async def test_anonymous_is_refused(tenant):
    stream = await open_stream(tenant_stream(tenant.slug))
    assert (stream.connected, stream.code) == (False, CloseCode.UNAUTHENTICATED)


@live
async def test_what_one_may_not_see_is_refused_identically_and_joins_no_group(
    tenant, other_tenant, make_member, make_dag, make_token, limit_to_grants
):
    member = await database_sync_to_async(make_member)(tenant, Role.ADMIN)
    limited = await database_sync_to_async(make_member)(tenant, Role.ADMIN)
    outsider = await database_sync_to_async(make_member)(other_tenant, Role.ADMIN)
    await database_sync_to_async(make_dag)(tenant, "etl")
    await database_sync_to_async(make_dag)(other_tenant, "theirs")
    await database_sync_to_async(limit_to_grants)(limited, tenant)
    their_token = await database_sync_to_async(make_token)(outsider, other_tenant)
    refusals = [
        await open_stream(tenant_stream(tenant.slug), user=outsider),  # not a member
        await open_stream(dag_stream(tenant.slug, "etl"), user=outsider),
        await open_stream(tenant_stream("no-such-tenant"), user=member),  # unknown tenant
        await open_stream(dag_stream(tenant.slug, "nope"), user=member),  # unknown DAG
        await open_stream(dag_stream(tenant.slug, "theirs"), user=member),  # another tenant's DAG
        await open_stream(dag_stream(other_tenant.slug, "theirs"), user=member),
        await open_stream(dag_stream(tenant.slug, "etl"), user=limited),  # not granted
        await open_stream(tenant_stream(tenant.slug), token=their_token),  # a token of another tenant
        await open_stream(f"/t/{tenant.slug}/ws/other/", user=member),  # no such stream
    ]
    assert [(s.connected, s.code) for s in refusals] == [(False, CloseCode.NOT_FOUND)] * len(refusals)
    layer = get_channel_layer()
    assert layer.groups == {}  # the checks ran before any group_add
    for stream in refusals:
        await stream.close()


@live
async def test_a_suspended_tenant_refuses_its_members_with_4403(tenant, make_member, make_dag):
    member = await database_sync_to_async(make_member)(tenant, Role.ADMIN)
    stranger = await database_sync_to_async(make_member)(
        await database_sync_to_async(tenants.create_tenant)(slug="initech"), Role.ADMIN
    )
    await database_sync_to_async(make_dag)(tenant, "etl")
    await database_sync_to_async(tenants.set_tenant_status)(tenant=tenant, status=Tenant.Status.SUSPENDED)
    assert (await open_stream(tenant_stream(tenant.slug), user=member)).code == CloseCode.SUSPENDED
    assert (await open_stream(dag_stream(tenant.slug, "etl"), user=member)).code == CloseCode.SUSPENDED
    assert (await open_stream(tenant_stream(tenant.slug), user=stranger)).code == CloseCode.NOT_FOUND


@live
async def test_a_foreign_or_missing_origin_is_refused(tenant, make_member):
    user = await database_sync_to_async(make_member)(tenant, Role.ADMIN)
    foreign = await open_stream(
        tenant_stream(tenant.slug), user=user, origin=(b"origin", b"https://evil.example")
    )
    missing = await open_stream(tenant_stream(tenant.slug), user=user, origin=None)
    assert (foreign.connected, missing.connected) == (False, False)


@live
async def test_what_the_client_sends_is_ignored(tenant, make_member, make_dag):
    user = await database_sync_to_async(make_member)(tenant, Role.VIEWER)
    dag = await database_sync_to_async(make_dag)(tenant, "etl")
    stream = await open_stream(tenant_stream(tenant.slug), user=user)
    await stream.communicator.send_to(text_data="not json {")
    await stream.communicator.send_to(bytes_data=b"\x00\x01")
    run = await database_sync_to_async(run_of)(dag)
    assert await stream.next_event() == run_event(run, "acme")
    await stream.close()


@live
async def test_leaving_the_stream_leaves_its_group(tenant, make_member):
    user = await database_sync_to_async(make_member)(tenant, Role.VIEWER)
    stream = await open_stream(tenant_stream(tenant.slug), user=user)
    layer = get_channel_layer()
    assert len(layer.groups[tenant_group(tenant.pk)]) == 1
    await stream.close()
    assert tenant_group(tenant.pk) not in layer.groups
