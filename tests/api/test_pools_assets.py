"""Pools (through the run-control services) and assets with their events (read-only) through the API."""

from __future__ import annotations

import pytest

from scheduler import services
from scheduler.models import Asset, AssetEvent, Pool, TaskInstance
from scheduler.states import TIState
from tenants.roles import Role
from tests.api.helpers import ACTOR, api, etl_dag, grant, store_dag
from tests.factories import make_run
from tests.scheduler.engine import START, drive
from tradewind.audit.models import AuditEntry
from tradewind.sdk import DAG, AssetAlias
from tradewind.sdk import Asset as SdkAsset
from tradewind.sdk.operators.empty import EmptyOperator

pytestmark = pytest.mark.django_db


# --- pools ----------------------------------------------------------------------------------------------------


def test_pools_crud(tenant, api_for):
    services.ensure_default_pool(tenant)
    client = api_for(tenant, Role.OP)
    body = {"name": "db", "slots": 4, "description": "the database", "include_deferred": True}
    response = client.post(api(tenant, "pools"), body, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {
        **body,
        "occupied_slots": 0,
        "running_slots": 0,
        "queued_slots": 0,
        "scheduled_slots": 0,
        "deferred_slots": 0,
        "open_slots": 4,
    }
    listed = client.get(api(tenant, "pools")).json()
    assert [pool["name"] for pool in listed["pools"]] == ["db", "default_pool"] and listed[
        "total_entries"
    ] == 2
    response = client.patch(api(tenant, "pools/db"), {"slots": -1}, format="json")
    assert response.status_code == 200
    assert response.json()["slots"] == -1 and response.json()["open_slots"] == -1
    assert response.json()["description"] == "the database"  # omitted fields keep their value
    assert client.get(api(tenant, "pools/db")).json()["include_deferred"] is True
    assert client.delete(api(tenant, "pools/db")).status_code == 204
    assert not Pool.objects.filter(tenant=tenant, name="db").exists()
    assert AuditEntry.objects.filter(chain=tenant.pk, action__startswith="pool.").count() == 3


def test_pool_slots_in_use(tenant, etl, etl_run, api_for):
    services.ensure_default_pool(tenant)
    services.schedule_run(etl_run)  # extract is scheduled
    TaskInstance.objects.filter(dag_run=etl_run, task_id="extract").update(pool_slots=3)
    ready = [ti for ti in services.schedule_run(etl_run) if ti.task_id == "extract"]
    services.queue_task_instances(ready)
    pool = api_for(tenant).get(api(tenant, "pools/default_pool")).json()
    assert (pool["queued_slots"], pool["occupied_slots"], pool["open_slots"]) == (3, 3, 125)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("post", "pools", {"slots": 3}, 400, "a new pool needs name"),
        ("post", "pools", {"name": "x", "slots": -5}, 400, "slots"),
        ("post", "pools", {"name": "x", "slots": "many"}, 400, "slots"),
        ("post", "pools", {"name": "default_pool", "slots": 3}, 409, "pool 'default_pool' already exists"),
        ("post", "pools", {"name": "x", "slots": 1, "size": 2}, 400, "Unknown field"),
        ("patch", "pools/default_pool", {"name": "renamed"}, 400, "cannot be renamed"),
        ("patch", "pools/nope", {"slots": 1}, 404, "pool 'nope' does not exist"),
        ("delete", "pools/default_pool", None, 400, "the default_pool cannot be deleted"),
    ],
)
def test_bad_pool_requests(tenant, api_for, method, path, body, status, message):
    services.ensure_default_pool(tenant)
    response = getattr(api_for(tenant, Role.OP), method)(api(tenant, path), body, format="json")
    assert response.status_code == status and message in response.content.decode()
    assert list(Pool.objects.for_tenant(tenant).values_list("name", "slots")) == [("default_pool", 128)]


def test_only_ops_change_pools_and_other_tenants_pools_are_not_found(tenant, other_tenant, api_for):
    services.set_pool(tenant=other_tenant, actor=ACTOR, name="theirs", slots=2)
    services.ensure_default_pool(tenant)
    user = api_for(tenant, Role.USER)
    assert user.get(api(tenant, "pools/default_pool")).status_code == 200
    assert user.post(api(tenant, "pools"), {"name": "x", "slots": 1}, format="json").status_code == 403
    assert user.patch(api(tenant, "pools/default_pool"), {"slots": 1}, format="json").status_code == 403
    assert user.delete(api(tenant, "pools/default_pool")).status_code == 403
    op = api_for(tenant, Role.OP)
    assert op.get(api(tenant, "pools/theirs")).status_code == 404
    assert op.patch(api(tenant, "pools/theirs"), {"slots": 9}, format="json").status_code == 404
    assert op.delete(api(tenant, "pools/theirs")).status_code == 404
    assert "theirs" not in op.get(api(tenant, "pools")).content.decode()
    assert Pool.objects.get(name="theirs").slots == 2


# --- assets ---------------------------------------------------------------------------------------------------

URI = "s3://bucket/orders.csv"


@pytest.fixture
def assets(tenant):
    """A producer DAG whose run updated the asset, a consumer DAG scheduled on it, and an unused asset."""
    with DAG("producer", schedule=None, start_date=START) as producer:
        EmptyOperator(task_id="write", outlets=[SdkAsset(URI)])
    run = make_run(tenant, store_dag(tenant, producer), logical_date=START, run_id="p1")
    drive(
        run,
        {
            "write": {
                "state": "success",
                "asset_events": [{"uri": URI, "extra": {"rows": 7, "secret": "xyz-123"}}],
            }
        },
    )
    store_dag(tenant, etl_dag("consumer", schedule=[SdkAsset(URI)]))
    Asset.objects.create(tenant=tenant, uri="file:///unused")
    return tenant


def test_assets_list_retrieve_and_consuming_dags(assets, api_for):
    client = api_for(assets)
    body = client.get(api(assets, "assets")).json()
    assert body["total_entries"] == 2
    by_uri = {asset["uri"]: asset for asset in body["assets"]}
    assert by_uri[URI]["consuming_dags"] == [{"dag_id": "consumer"}]
    assert by_uri["file:///unused"]["consuming_dags"] == []
    asset_id = by_uri[URI]["id"]
    assert client.get(api(assets, f"assets/{asset_id}")).json() == by_uri[URI]
    assert [a["uri"] for a in client.get(api(assets, "assets?uri_pattern=bucket")).json()["assets"]] == [URI]
    assert client.get(api(assets, "assets/999999")).status_code == 404


def test_dags_scheduled_on_a_ref_or_on_an_alias_an_assets_events_came_through_consume_it(assets, api_for):
    store_dag(assets, etl_dag("by_ref", schedule=[SdkAsset.ref(uri=URI)]))
    store_dag(assets, etl_dag("by_alias", schedule=[AssetAlias("dynamic")]))
    by_uri = {
        a["uri"]: a["consuming_dags"] for a in api_for(assets).get(api(assets, "assets")).json()["assets"]
    }
    assert by_uri[URI] == [
        {"dag_id": "by_ref"},
        {"dag_id": "consumer"},
    ]  # no event came through the alias yet
    AssetEvent.objects.create(tenant=assets, asset=Asset.objects.get(uri=URI), source_alias="dynamic")
    by_uri = {
        a["uri"]: a["consuming_dags"] for a in api_for(assets).get(api(assets, "assets")).json()["assets"]
    }
    assert by_uri[URI] == [{"dag_id": "by_alias"}, {"dag_id": "by_ref"}, {"dag_id": "consumer"}]
    assert by_uri["file:///unused"] == []


def test_asset_events_with_their_source_and_masked_extra(assets, api_for):
    client = api_for(assets)
    (event,) = client.get(api(assets, "assets/events")).json()["asset_events"]
    assert event["uri"] == URI and event["source_dag_id"] == "producer" and event["source_run_id"] == "p1"
    assert event["source_task_id"] == "write" and event["source_map_index"] == -1
    assert event["extra"] == {"rows": 7, "secret": "***"}
    assert client.get(api(assets, "assets/events?source_dag_id=consumer")).json()["total_entries"] == 0
    assert client.get(api(assets, f"assets/events?asset_id={event['asset_id']}")).json()["total_entries"] == 1
    assert client.get(api(assets, "assets/events?asset_id=x")).status_code == 400


def test_assets_are_read_only_and_scoped(assets, other_tenant, member_client, api_for):
    admin = api_for(assets, Role.ADMIN)
    assert admin.post(api(assets, "assets"), {"uri": "x://y"}, format="json").status_code == 405
    theirs = Asset.objects.create(tenant=other_tenant, uri="s3://theirs")
    assert admin.get(api(assets, f"assets/{theirs.pk}")).status_code == 404
    assert "theirs" not in admin.get(api(assets, "assets")).content.decode()
    client, membership = member_client(assets, Role.VIEWER, grants_only=True)
    body = client.get(api(assets, "assets")).json()
    assert {a["uri"]: a["consuming_dags"] for a in body["assets"]}[URI] == []  # the consumer is not granted
    assert client.get(api(assets, "assets/events")).json()["total_entries"] == 0  # nor the producer
    grant(assets, membership, TaskInstance.objects.get(task_id="write").dag_run.dag, "view_dag")
    assert client.get(api(assets, "assets/events")).json()["total_entries"] == 1


def test_deferred_state_counts_only_for_pools_that_include_it(tenant, etl, etl_run, api_for):
    services.set_pool(tenant=tenant, actor=ACTOR, name="default_pool", slots=10, include_deferred=True)
    TaskInstance.objects.filter(dag_run=etl_run, task_id="extract").update(state=TIState.DEFERRED)
    pool = api_for(tenant).get(api(tenant, "pools/default_pool")).json()
    assert (pool["deferred_slots"], pool["occupied_slots"], pool["open_slots"]) == (1, 1, 9)
