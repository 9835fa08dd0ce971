"""DAG runs through the API: listing one DAG's runs and every DAG's, Airflow's filters, triggering with conf,
marking, deleting and clearing through the run-control services, and who may do which."""

from __future__ import annotations

import datetime as dt

import pytest

from scheduler.models import DagRun, TaskInstance
from scheduler.states import DagRunState, RunType
from tenants.roles import Role
from tests.api.helpers import api, etl_dag, grant, store_dag
from tests.factories import make_run
from tests.scheduler.engine import START, drive
from tradewind.audit.models import AuditEntry

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


def run_ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [run["dag_run_id"] for run in response.json()["dag_runs"]]


@pytest.fixture
def runs(tenant, etl):
    """etl: r1 (manual, succeeded), r2 (scheduled, queued); sales: s1 (manual, queued)."""
    r1 = make_run(tenant, etl, logical_date=START, run_id="r1", conf={"rows": 5, "api_password": "pw-12345"})
    drive(r1)
    make_run(tenant, etl, logical_date=START + DAY, run_id="r2", run_type=RunType.SCHEDULED)
    make_run(tenant, store_dag(tenant, etl_dag("sales")), logical_date=START + 2 * DAY, run_id="s1")
    return tenant


def test_list_runs_of_one_dag_and_of_every_dag(runs, api_for):
    client = api_for(runs)
    response = client.get(api(runs, "dags/etl/dagRuns"))
    assert run_ids(response) == ["r1", "r2"] and response.json()["total_entries"] == 2
    assert run_ids(client.get(api(runs, "dags/~/dagRuns"))) == ["r1", "r2", "s1"]
    r1 = response.json()["dag_runs"][0]
    assert r1["dag_id"] == "etl" and r1["state"] == "success" and r1["run_type"] == "manual"
    assert r1["logical_date"] == r1["execution_date"] and r1["logical_date"].startswith("2024-01-01")
    assert r1["conf"] == {"rows": 5, "api_password": "***"}
    assert r1["dag_version"] == 1 and r1["external_trigger"] is True


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=queued", ["r2", "s1"]),
        ("state=success&state=queued", ["r1", "r2", "s1"]),
        ("run_type=scheduled", ["r2"]),
        ("logical_date_gte=2024-01-02T00:00:00Z", ["r2", "s1"]),
        ("execution_date_lte=2024-01-02T00:00:00Z", ["r1", "r2"]),
        ("logical_date_gte=2024-01-02T00:00:00Z&logical_date_lte=2024-01-02T00:00:00Z", ["r2"]),
        ("start_date_gte=2000-01-01T00:00:00Z", ["r1"]),
        ("order_by=-logical_date", ["s1", "r2", "r1"]),
        ("order_by=dag_run_id&limit=1&offset=1", ["r2"]),
    ],
)
def test_run_filters(runs, api_for, query, expected):
    assert run_ids(api_for(runs).get(api(runs, f"dags/~/dagRuns?{query}"))) == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=sleepy", "state"),
        ("run_type=cron", "run_type"),
        ("logical_date_gte=yesterday", "logical_date_gte"),
    ],
)
def test_bad_run_filters_are_400(runs, api_for, query, field):
    response = api_for(runs).get(api(runs, f"dags/etl/dagRuns?{query}"))
    assert response.status_code == 400 and field in response.json()


def test_retrieve_a_run_and_unknown_or_foreign_ones_are_404(runs, other_tenant, api_for):
    make_run(other_tenant, etl_dag("theirs"), logical_date=START, run_id="t1")
    client = api_for(runs, Role.ADMIN)
    assert client.get(api(runs, "dags/etl/dagRuns/r1")).json()["state"] == "success"
    response = client.get(api(runs, "dags/etl/dagRuns/nope"))
    assert response.status_code == 404 and response.json() == {"detail": "DAG 'etl' has no run 'nope'"}
    assert client.get(api(runs, "dags/theirs/dagRuns/t1")).status_code == 404
    assert client.get(api(runs, "dags/theirs/dagRuns")).status_code == 404
    assert client.delete(api(runs, "dags/theirs/dagRuns/t1")).status_code == 404
    assert client.post(api(runs, "dags/theirs/dagRuns"), {}, format="json").status_code == 404
    assert "t1" not in client.get(api(runs, "dags/~/dagRuns")).content.decode()
    assert client.get(api(other_tenant, "dags/theirs/dagRuns/t1")).status_code == 404
    assert DagRun.objects.for_tenant(other_tenant).filter(run_id="t1").exists()


def test_trigger_a_run_with_conf_logical_date_run_id_and_note(tenant, etl, member_client):
    client, membership = member_client(tenant, Role.USER)
    body = {
        "conf": {"rows": 3},
        "dag_run_id": "by-hand",
        "logical_date": "2024-02-01T00:00:00Z",
        "note": "rerun",
    }
    response = client.post(api(tenant, "dags/etl/dagRuns"), body, format="json")
    assert response.status_code == 200, response.content
    run = response.json()
    assert run["dag_run_id"] == "by-hand" and run["state"] == "queued" and run["run_type"] == "manual"
    assert run["conf"] == {"rows": 3} and run["note"] == "rerun"
    assert run["logical_date"].startswith("2024-02-01T00:00:00")
    assert run["triggered_by"] == membership.user.username
    stored = DagRun.objects.get(dag__dag_id="etl", run_id="by-hand")
    assert stored.conf == {"rows": 3} and stored.task_instances.count() == 3
    assert AuditEntry.objects.filter(chain=tenant.pk, action="run.triggered").exists()


def test_trigger_with_airflow2s_execution_date_and_without_anything(tenant, etl, api_for):
    client = api_for(tenant, Role.USER)
    response = client.post(
        api(tenant, "dags/etl/dagRuns"), {"execution_date": "2024-03-01T00:00:00Z"}, format="json"
    )
    assert response.json()["logical_date"].startswith("2024-03-01")
    response = client.post(api(tenant, "dags/etl/dagRuns/"), {}, format="json")
    assert response.status_code == 200 and response.json()["dag_run_id"].startswith("manual__")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"conf": {"rows": 0}}, 400, "rows"),
        ({"conf": {"rows": "many"}}, 400, "rows"),
        ({"conf": [1, 2]}, 400, "Must be a JSON object."),
        ({"logical_date": "soon"}, 400, "Datetime has wrong format"),
        ({"dag_run_id": "bad id/with slash"}, 400, "invalid run_id"),
        ({"logical_date": "2024-01-01T00:00:00Z", "execution_date": "2024-01-02T00:00:00Z"}, 400, "differ"),
        ({"confs": {}}, 400, "Unknown field"),
        ({"dag_run_id": "r1"}, 409, "already has a run with run_id 'r1'"),
    ],
)
def test_bad_triggers_are_refused_with_a_clear_message(tenant, etl, etl_run, api_for, body, status, message):
    before = DagRun.objects.count()
    response = api_for(tenant, Role.USER).post(api(tenant, "dags/etl/dagRuns"), body, format="json")
    assert response.status_code == status
    assert message in response.content.decode()
    assert DagRun.objects.count() == before


def test_invalid_conf_names_the_param(tenant, etl, api_for):
    response = api_for(tenant, Role.USER).post(
        api(tenant, "dags/etl/dagRuns"), {"conf": {"rows": 0}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("invalid conf for DAG 'etl'")


def test_a_viewer_can_read_runs_but_not_change_them(tenant, etl, etl_run, api_for):
    client = api_for(tenant, Role.VIEWER)
    assert client.get(api(tenant, "dags/etl/dagRuns/r1")).status_code == 200
    assert client.post(api(tenant, "dags/etl/dagRuns"), {}, format="json").status_code == 403
    assert (
        client.patch(api(tenant, "dags/etl/dagRuns/r1"), {"state": "failed"}, format="json").status_code
        == 403
    )
    assert client.delete(api(tenant, "dags/etl/dagRuns/r1")).status_code == 403
    assert client.post(api(tenant, "dags/etl/dagRuns/r1/clear"), {}, format="json").status_code == 403
    assert DagRun.objects.filter(pk=etl_run.pk, state=DagRunState.QUEUED).exists()


def test_grants_limit_who_sees_and_triggers_which_dag(runs, member_client):
    client, membership = member_client(runs, Role.USER, grants_only=True)
    assert run_ids(client.get(api(runs, "dags/~/dagRuns"))) == []
    assert client.get(api(runs, "dags/etl/dagRuns/r1")).status_code == 404
    etl = DagRun.objects.get(run_id="r1").dag
    grant(runs, membership, etl, "view_dag")
    assert run_ids(client.get(api(runs, "dags/~/dagRuns"))) == ["r1", "r2"]
    assert client.post(api(runs, "dags/etl/dagRuns"), {}, format="json").status_code == 403
    assert (
        client.patch(api(runs, "dags/etl/dagRuns/r2"), {"state": "failed"}, format="json").status_code == 403
    )
    assert client.post(api(runs, "dags/sales/dagRuns"), {}, format="json").status_code == 404
    grant(runs, membership, etl, "view_dag", "trigger_dag")
    assert client.post(api(runs, "dags/etl/dagRuns"), {}, format="json").status_code == 200
    assert (
        client.patch(api(runs, "dags/etl/dagRuns/r2"), {"state": "failed"}, format="json").status_code == 200
    )


def test_mark_a_run(tenant, etl, etl_run, api_for):
    client = api_for(tenant, Role.USER)
    response = client.patch(api(tenant, "dags/etl/dagRuns/r1"), {"state": "failed"}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "failed"
    assert DagRun.objects.get(pk=etl_run.pk).state == DagRunState.FAILED
    response = client.patch(api(tenant, "dags/etl/dagRuns/r1"), {"state": "success"}, format="json")
    assert response.json()["state"] == "success"
    assert set(TaskInstance.objects.filter(dag_run=etl_run).values_list("state", flat=True)) == {"success"}


@pytest.mark.parametrize(
    ("body", "field"), [({"state": "running"}, "state"), ({}, "state"), ({"note": "x"}, "note")]
)
def test_marking_with_a_bad_body_is_400(tenant, etl, etl_run, api_for, body, field):
    response = api_for(tenant, Role.USER).patch(api(tenant, "dags/etl/dagRuns/r1"), body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert DagRun.objects.get(pk=etl_run.pk).state == DagRunState.QUEUED


def test_delete_a_run(tenant, etl, etl_run, api_for):
    client = api_for(tenant, Role.USER)
    assert client.delete(api(tenant, "dags/etl/dagRuns/r1")).status_code == 204
    assert not DagRun.objects.filter(pk=etl_run.pk).exists()
    assert not TaskInstance.objects.filter(dag_run_id=etl_run.pk).exists()
    assert client.delete(api(tenant, "dags/etl/dagRuns/r1")).status_code == 404


def test_clear_a_run_dry_run_first(tenant, etl, etl_run, api_for):
    drive(etl_run)
    client = api_for(tenant, Role.USER)
    response = client.post(api(tenant, "dags/etl/dagRuns/r1/clear"), {}, format="json")  # Airflow: dry run
    assert response.status_code == 200
    listed = {(ti["task_id"], ti["map_index"]) for ti in response.json()["task_instances"]}
    assert listed == {("extract", -1), ("double", 0), ("double", 1), ("double", 2), ("publish.load", -1)}
    assert DagRun.objects.get(pk=etl_run.pk).state == DagRunState.SUCCESS
    response = client.post(api(tenant, "dags/etl/dagRuns/r1/clear"), {"dry_run": False}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "queued"
    assert set(TaskInstance.objects.filter(dag_run=etl_run).values_list("state", flat=True)) == {"none"}


def test_clear_only_failed(tenant, etl, etl_run, api_for):
    drive(etl_run, {"publish.load": {"state": "failed"}})
    body = {"dry_run": True, "only_failed": True}
    response = api_for(tenant, Role.USER).post(api(tenant, "dags/etl/dagRuns/r1/clear"), body, format="json")
    assert [ti["task_id"] for ti in response.json()["task_instances"]] == ["publish.load"]
    response = api_for(tenant, Role.USER).post(
        api(tenant, "dags/etl/dagRuns/r1/clear"), {"dry": 1}, format="json"
    )
    assert response.status_code == 400 and "dry" in response.json()


def test_listing_runs_takes_a_bounded_number_of_queries(tenant, etl, api_for, django_assert_max_num_queries):
    for n in range(20):
        make_run(tenant, etl, logical_date=START + n * DAY, run_id=f"run{n:02}")
    client = api_for(tenant)
    client.get(api(tenant, "dags/~/dagRuns"))
    with django_assert_max_num_queries(8):
        response = client.get(api(tenant, "dags/~/dagRuns?state=queued"))
    assert response.json()["total_entries"] == 20
    with django_assert_max_num_queries(8):
        assert len(run_ids(client.get(api(tenant, "dags/etl/dagRuns")))) == 20
