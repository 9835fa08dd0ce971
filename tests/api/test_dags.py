"""DAGs and DAG versions through the API: Airflow's list filters, ordering and paging, the details of the
active version, pausing, per-DAG grants, another tenant's DAGs, and a bounded number of queries."""

from __future__ import annotations

import pytest

from scheduler.models import Dag
from tenants.roles import Role
from tests.api.helpers import api, etl_dag, grant, store_dag

pytestmark = pytest.mark.django_db


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [dag["dag_id"] for dag in response.json()["dags"]]


@pytest.fixture
def dags(tenant):
    """Four DAGs of the tenant: etl (team-a), sales (team-b, paused), reports (team-a, team-b), gone
    (inactive)."""
    store_dag(tenant, etl_dag())
    store_dag(tenant, etl_dag("sales", tags=("team-b",)))
    store_dag(tenant, etl_dag("reports", tags=("team-a", "team-b")))
    store_dag(tenant, etl_dag("gone"))
    Dag.objects.filter(dag_id="sales").update(is_paused=True)
    Dag.objects.filter(dag_id="gone").update(is_active=False)
    return tenant


def test_list_shows_airflows_fields_of_active_dags_by_dag_id(dags, api_for):
    response = api_for(dags).get(api(dags, "dags"))
    body = response.json()
    assert body["total_entries"] == 3
    assert ids(response) == ["etl", "reports", "sales"]
    etl = body["dags"][0]
    assert etl["tags"] == [{"name": "team-a"}]
    assert etl["is_paused"] is False and etl["is_active"] is True
    assert etl["bundle_name"] == "default" and etl["fileloc"]
    assert etl["description"] == "extract, transform, load"
    assert etl["schedule"]["summary"] == etl["timetable_summary"]
    assert etl["has_import_errors"] is False
    assert set(etl) >= {"next_dagrun", "next_dagrun_create_after", "max_active_runs", "owners"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tags=team-a", ["etl", "reports"]),
        ("tags=team-b&tags=team-a", ["etl", "reports", "sales"]),
        ("tags=nobody", []),
        ("paused=true", ["sales"]),
        ("paused=false", ["etl", "reports"]),
        ("only_active=false", ["etl", "gone", "reports", "sales"]),
        ("dag_id_pattern=EP", ["reports"]),
        ("order_by=-dag_id", ["sales", "reports", "etl"]),
        ("limit=2", ["etl", "reports"]),
        ("limit=2&offset=2", ["sales"]),
    ],
)
def test_list_filters_orders_and_pages(dags, api_for, query, expected):
    response = api_for(dags).get(api(dags, f"dags?{query}"))
    assert ids(response) == expected
    if "limit" in query:
        assert response.json()["total_entries"] == 3


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=-1", "limit must be at least 1"),
        ("offset=x", "offset must be an integer"),
        ("order_by=owner_password", "order_by 'owner_password' is not one of"),
        ("paused=maybe", "Must be a valid boolean"),
    ],
)
def test_bad_list_parameters_are_400_with_a_clear_message(dags, api_for, query, message):
    response = api_for(dags).get(api(dags, f"dags?{query}"))
    assert response.status_code == 400
    assert message in response.content.decode()


def test_details_show_the_active_versions_tasks_groups_schedule_params_docs_and_next_run(
    tenant, etl, api_for
):
    Dag.objects.filter(pk=etl.dag_id).update(next_dagrun_data_interval_start="2024-05-01T00:00:00Z")
    client = api_for(tenant)
    body = client.get(api(tenant, "dags/etl")).json()
    assert body["dag_id"] == "etl" and body["dag_version"] == 1
    assert body["doc_md"] == "# ETL\nLoads the data."
    assert body["catchup"] is False and body["timezone"] == "UTC"
    assert body["schedule"]["summary"] == "@daily"
    assert body["next_dagrun"].startswith("2024-05-01T00:00:00")
    assert body["params"]["rows"] == {
        "value": 10,
        "has_default": True,
        "description": None,
        "schema": {"type": "integer", "minimum": 1},
    }
    assert body["params"]["api_password"]["value"] == "***"  # a sensitive-looking param is never shown
    tasks = {t["task_id"]: t for t in body["tasks"]}
    assert set(tasks) == {"extract", "double", "publish.load"}
    assert tasks["double"]["is_mapped"] is True and tasks["extract"]["retries"] == 2
    assert tasks["extract"]["downstream_task_ids"] == ["double"]
    assert tasks["publish.load"]["group_id"] == "publish"
    assert tasks["double"]["class_ref"]["class_name"]
    assert [group["group_id"] for group in body["task_groups"]["groups"]] == ["publish"]
    assert {"from": "extract", "to": "double"} in body["edges"]
    assert client.get(api(tenant, "dags/etl/details")).json() == body  # Airflow's details endpoint
    assert client.get(api(tenant, "dags/etl/")).json() == body  # with or without a trailing slash


def test_tasks_of_a_dag(tenant, etl, api_for):
    client = api_for(tenant)
    body = client.get(api(tenant, "dags/etl/tasks")).json()
    assert body["total_entries"] == 3
    assert [t["task_id"] for t in body["tasks"]] == ["double", "extract", "publish.load"]
    assert client.get(api(tenant, "dags/etl/tasks/extract")).json()["retries"] == 2
    response = client.get(api(tenant, "dags/etl/tasks/nope"))
    assert response.status_code == 404
    assert response.json() == {"detail": "DAG 'etl' has no task 'nope'"}


def test_unknown_and_other_tenants_dags_are_404(tenant, other_tenant, etl, api_for):
    store_dag(other_tenant, etl_dag("theirs"))
    client = api_for(tenant, Role.ADMIN)
    assert client.get(api(tenant, "dags/nope")).json() == {"detail": "DAG 'nope' does not exist"}
    assert client.get(api(tenant, "dags/theirs")).status_code == 404
    assert client.patch(api(tenant, "dags/theirs"), {"is_paused": True}, format="json").status_code == 404
    assert client.get(api(other_tenant, "dags")).status_code == 404
    assert "theirs" not in client.get(api(tenant, "dags")).content.decode()
    assert not Dag.objects.get(dag_id="theirs").is_paused


def test_pause_and_unpause_through_the_service(tenant, etl, api_for):
    client = api_for(tenant, Role.USER)
    response = client.patch(api(tenant, "dags/etl"), {"is_paused": True}, format="json")
    assert response.status_code == 200 and response.json()["is_paused"] is True
    assert Dag.objects.get(pk=etl.dag_id).is_paused
    response = client.patch(api(tenant, "dags/etl"), {"is_paused": False}, format="json")
    assert response.json()["is_paused"] is False
    dag = Dag.objects.get(pk=etl.dag_id)
    assert not dag.is_paused and dag.next_dagrun_create_after is not None  # unpausing computed the next run


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "is_paused"),
        ({"is_paused": "perhaps"}, "is_paused"),
        ({"is_paused": True, "owners": "x"}, "owners"),
    ],
)
def test_pause_with_a_bad_body_is_400(tenant, etl, api_for, body, field):
    response = api_for(tenant, Role.USER).patch(api(tenant, "dags/etl"), body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Dag.objects.get(pk=etl.dag_id).is_paused


def test_a_viewer_cannot_pause(tenant, etl, api_for):
    response = api_for(tenant, Role.VIEWER).patch(api(tenant, "dags/etl"), {"is_paused": True}, format="json")
    assert response.status_code == 403
    assert not Dag.objects.get(pk=etl.dag_id).is_paused


def test_members_limited_to_granted_dags_see_and_pause_only_those(dags, member_client):
    client, membership = member_client(dags, Role.USER, grants_only=True)
    assert ids(client.get(api(dags, "dags"))) == []
    etl, reports = Dag.objects.get(dag_id="etl"), Dag.objects.get(dag_id="reports")
    grant(dags, membership, etl, "view_dag")
    grant(dags, membership, reports, "view_dag", "change_dag")
    assert ids(client.get(api(dags, "dags"))) == ["etl", "reports"]
    assert client.get(api(dags, "dags/sales")).status_code == 404  # not granted: as if it did not exist
    assert client.patch(api(dags, "dags/sales"), {"is_paused": True}, format="json").status_code == 404
    assert client.patch(api(dags, "dags/etl"), {"is_paused": True}, format="json").status_code == 403
    assert client.patch(api(dags, "dags/reports"), {"is_paused": True}, format="json").status_code == 200
    assert client.get(api(dags, "dags/etl/dagVersions")).status_code == 200
    assert client.get(api(dags, "dags/sales/dagVersions")).status_code == 404


def test_versions_list_and_serialized_json(tenant, etl, api_for):
    store_dag(tenant, etl_dag(tags=("team-a", "new")))
    client = api_for(tenant)
    body = client.get(api(tenant, "dags/etl/dagVersions")).json()
    assert body["total_entries"] == 2
    assert [(v["version_number"], v["is_active"]) for v in body["dag_versions"]] == [(1, False), (2, True)]
    assert "serialized" not in body["dag_versions"][0]
    version = client.get(api(tenant, "dags/etl/dagVersions/2")).json()
    assert version["serialized"]["tags"] == ["new", "team-a"]
    assert version["serialized"]["params"]["api_password"] == "***"
    assert version["bundle_name"] == "default" and version["dag_id"] == "etl"
    response = client.get(api(tenant, "dags/etl/dagVersions/9"))
    assert response.status_code == 404 and response.json() == {"detail": "DAG 'etl' has no version 9"}
    assert client.get(api(tenant, "dags/nope/dagVersions")).status_code == 404


def test_listing_dags_takes_a_bounded_number_of_queries(tenant, api_for, django_assert_max_num_queries):
    for n in range(15):
        store_dag(tenant, etl_dag(f"dag_{n:02}"))
    client = api_for(tenant)
    client.get(api(tenant, "dags"))  # warm the session and membership caches
    with django_assert_max_num_queries(8):
        response = client.get(api(tenant, "dags?tags=team-a"))
    assert len(response.json()["dags"]) == 15
    with django_assert_max_num_queries(8):
        response = client.get(api(tenant, "dags/dag_03/dagVersions"))
    assert response.json()["total_entries"] == 1
