"""Task instances through the API: a run's instances with their map indexes, tries, marking and clearing
through the run-control services, logs read by offset while they grow, and XCom entries with masking."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from scheduler import services
from scheduler.models import DagRun, TaskInstance
from scheduler.states import TIState
from tenants.roles import Role
from tests.api.helpers import api, etl_dag, grant, store_dag
from tests.factories import make_run
from tests.scheduler.engine import START, drive, push_xcom
from workers.logs import get_log_store

pytestmark = pytest.mark.django_db

RUN = "dags/etl/dagRuns/r1"


def labels(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [
        ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"
        for ti in response.json()["task_instances"]
    ]


def start(run: DagRun, task_id: str) -> TaskInstance:
    """Schedule, queue and start `task_id` of `run`, as the scheduler and a worker would."""
    ready = [ti for ti in services.schedule_run(run) if ti.task_id == task_id]
    (queued,) = services.queue_task_instances(ready)
    started = services.start_task_instance(
        tenant_id=run.tenant_id, ti_id=queued.pk, try_number=queued.try_number, hostname="h", pid=1
    )
    assert started is not None
    return TaskInstance.objects.select_related("dag_run__dag").get(pk=started.pk)


def test_a_runs_task_instances_with_their_map_indexes(tenant, etl, etl_run, api_for):
    drive(etl_run)
    client = api_for(tenant)
    response = client.get(api(tenant, f"{RUN}/taskInstances"))
    assert labels(response) == ["double[0]", "double[1]", "double[2]", "extract", "publish.load"]
    assert response.json()["total_entries"] == 5
    extract = response.json()["task_instances"][3]
    assert extract["state"] == "success" and extract["try_number"] == 1 and extract["dag_run_id"] == "r1"
    assert (
        extract["dag_id"] == "etl"
        and extract["hostname"] == "test-host"
        and extract["rendered_map_index"] is None
    )
    assert labels(client.get(api(tenant, f"{RUN}/taskInstances?task_id=double&map_index=1"))) == ["double[1]"]
    assert labels(client.get(api(tenant, f"{RUN}/taskInstances/double/listMapped"))) == [
        "double[0]",
        "double[1]",
        "double[2]",
    ]
    ordered = client.get(api(tenant, f"{RUN}/taskInstances?order_by=-map_index&limit=2"))
    assert labels(ordered) == ["double[2]", "double[1]"]


def test_state_filter_and_none_state(tenant, etl, etl_run, api_for):
    client = api_for(tenant)
    response = client.get(api(tenant, f"{RUN}/taskInstances?state=none"))
    assert labels(response) == ["double", "extract", "publish.load"]
    assert {ti["state"] for ti in response.json()["task_instances"]} == {None}  # Airflow's "no state"
    assert labels(client.get(api(tenant, f"{RUN}/taskInstances?state=success"))) == []
    assert client.get(api(tenant, f"{RUN}/taskInstances?state=happy")).status_code == 400


def test_task_instances_across_dags_and_runs(tenant, etl, etl_run, api_for):
    make_run(tenant, store_dag(tenant, etl_dag("sales")), logical_date=START, run_id="s1")
    client = api_for(tenant)
    assert len(labels(client.get(api(tenant, "dags/~/dagRuns/~/taskInstances")))) == 6
    assert len(labels(client.get(api(tenant, "dags/~/dagRuns/s1/taskInstances")))) == 3
    assert len(labels(client.get(api(tenant, "dags/sales/dagRuns/~/taskInstances")))) == 3
    assert client.get(api(tenant, "dags/sales/dagRuns/r1/taskInstances")).status_code == 404


def test_retrieve_by_task_id_and_map_index(tenant, etl, etl_run, api_for):
    drive(etl_run)
    client = api_for(tenant)
    assert client.get(api(tenant, f"{RUN}/taskInstances/extract")).json()["state"] == "success"
    mapped = client.get(api(tenant, f"{RUN}/taskInstances/double/2")).json()
    assert mapped["map_index"] == 2 and mapped["rendered_fields"] is not None and "error" in mapped
    response = client.get(api(tenant, f"{RUN}/taskInstances/double"))  # expanded: no unmapped instance
    assert response.status_code == 404
    assert response.json() == {"detail": "run 'r1' of DAG 'etl' has no task instance 'double'"}
    assert client.get(api(tenant, f"{RUN}/taskInstances/double/7")).status_code == 404
    assert client.get(api(tenant, "dags/etl/dagRuns/r9/taskInstances/extract")).status_code == 404


def test_tries_keep_the_history(tenant, etl, etl_run, api_for):
    ti = start(etl_run, "extract")
    services.finish_task_instance(ti, {"state": "failed", "error": "boom"})
    drive(etl_run, now=timezone.now() + dt.timedelta(hours=1))  # the retry is due: try 2 succeeds
    client = api_for(tenant)
    body = client.get(api(tenant, f"{RUN}/taskInstances/extract/tries")).json()
    assert [(t["try_number"], t["state"]) for t in body["task_instances"]] == [(1, "failed"), (2, "success")]
    assert body["task_instances"][0]["error"] == "boom" and body["task_instances"][0]["dag_id"] == "etl"
    assert client.get(api(tenant, f"{RUN}/taskInstances/extract/tries/1")).json()["state"] == "failed"
    assert client.get(api(tenant, f"{RUN}/taskInstances/extract/tries/3")).status_code == 404
    mapped = client.get(api(tenant, f"{RUN}/taskInstances/double/1/tries")).json()
    assert [(t["try_number"], t["map_index"]) for t in mapped["task_instances"]] == [(1, 1)]
    assert client.get(api(tenant, f"{RUN}/taskInstances/double/1/tries/1")).json()["state"] == "success"


def test_mark_a_task_instance_and_its_downstream(tenant, etl, etl_run, api_for):
    client = api_for(tenant, Role.USER)
    body = {"new_state": "success", "include_downstream": True}
    response = client.patch(api(tenant, f"{RUN}/taskInstances/extract"), body, format="json")
    assert response.status_code == 200
    assert labels(response) == ["double", "extract", "publish.load"]
    assert set(TaskInstance.objects.filter(dag_run=etl_run).values_list("state", flat=True)) == {"success"}


def test_mark_a_mapped_task_instance(tenant, etl, etl_run, api_for):
    drive(etl_run)
    response = api_for(tenant, Role.USER).patch(
        api(tenant, f"{RUN}/taskInstances/double/1"), {"new_state": "failed"}, format="json"
    )
    assert labels(response) == ["double[1]"]
    assert TaskInstance.objects.get(dag_run=etl_run, task_id="double", map_index=1).state == TIState.FAILED


@pytest.mark.parametrize(
    ("role", "body", "status"),
    [
        (Role.VIEWER, {"new_state": "success"}, 403),
        (Role.USER, {"new_state": "running"}, 400),
        (Role.USER, {}, 400),
        (Role.USER, {"new_state": "success", "dry_run": True}, 400),
    ],
)
def test_marking_refusals(tenant, etl, etl_run, api_for, role, body, status):
    response = api_for(tenant, role).patch(api(tenant, f"{RUN}/taskInstances/extract"), body, format="json")
    assert response.status_code == status
    assert TaskInstance.objects.get(dag_run=etl_run, task_id="extract").state == TIState.NONE


def test_clear_task_instances_dry_run_then_for_real(tenant, etl, etl_run, api_for):
    drive(etl_run)
    client = api_for(tenant, Role.USER)
    url = api(tenant, "dags/etl/clearTaskInstances")
    body = {"dag_run_id": "r1", "task_ids": ["double"], "map_indexes": [1], "only_failed": False}
    response = client.post(url, body, format="json")  # Airflow's default: a dry run
    assert labels(response) == ["double[1]"]
    assert TaskInstance.objects.get(dag_run=etl_run, task_id="double", map_index=1).state == TIState.SUCCESS
    body.update(dry_run=False, include_downstream=True)
    response = client.post(url, body, format="json")
    assert labels(response) == ["double[1]", "publish.load"]
    states = dict(
        TaskInstance.objects.filter(dag_run=etl_run).values_list("task_id", "state").order_by("map_index")
    )
    assert states["publish.load"] == TIState.NONE and states["extract"] == TIState.SUCCESS
    assert DagRun.objects.get(pk=etl_run.pk).state == "queued"


@pytest.mark.parametrize(
    ("role", "body", "status", "message"),
    [
        (Role.USER, {"task_ids": ["extract"]}, 400, "dag_run_id"),
        (Role.USER, {"dag_run_id": "r9"}, 404, "DAG 'etl' has no run 'r9'"),
        (Role.USER, {"dag_run_id": "r1", "task_ids": ["nope"]}, 400, "has no task 'nope'"),
        (Role.USER, {"dag_run_id": "r1", "only_running": True}, 400, "only_running"),
        (Role.VIEWER, {"dag_run_id": "r1"}, 403, "does not allow"),
    ],
)
def test_clear_task_instances_refusals(tenant, etl, etl_run, api_for, role, body, status, message):
    drive(etl_run)
    response = api_for(tenant, role).post(
        api(tenant, "dags/etl/clearTaskInstances"), {**body, "dry_run": False}, format="json"
    )
    assert response.status_code == status and message in response.content.decode()
    assert set(TaskInstance.objects.filter(dag_run=etl_run).values_list("state", flat=True)) == {"success"}


# --- logs ---------------------------------------------------------------------------------------------------


def test_a_log_is_read_by_offset_while_it_grows_until_the_try_finishes(tenant, etl, etl_run, api_for):
    ti = start(etl_run, "extract")
    client = api_for(tenant)
    url = api(tenant, f"{RUN}/taskInstances/extract/logs/1")
    out = get_log_store().writer(ti, 1)
    out.write(b"first line\nsecond (partial")
    first = client.get(url).json()
    assert first == {"content": "first line\n", "next_offset": 11, "finished": False}
    out.write(b" line)\n")
    second = client.get(url, {"offset": first["next_offset"]}).json()
    assert second == {"content": "second (partial line)\n", "next_offset": 33, "finished": False}
    assert client.get(url, {"offset": 33}).json() == {"content": "", "next_offset": 33, "finished": False}
    out.close()
    services.finish_task_instance(ti, {"state": "success"})
    assert client.get(url, {"offset": 33}).json() == {"content": "", "next_offset": 33, "finished": True}
    assert client.get(url, {"offset": 0, "limit": 5}).json() == {
        "content": "first",
        "next_offset": 5,
        "finished": False,  # the try is over, but there is more to read
    }


def test_a_character_cut_by_the_limit_is_left_for_the_next_read(tenant, etl, etl_run, api_for):
    ti = start(etl_run, "extract")
    with get_log_store().writer(ti, 1) as out:
        out.write("naïve ✓\n".encode())
    url = api(tenant, f"{RUN}/taskInstances/extract/logs/1")
    client = api_for(tenant)
    text, offset = "", 0
    for _ in range(20):
        chunk = client.get(url, {"offset": offset, "limit": 3}).json()
        text, offset = text + chunk["content"], chunk["next_offset"]
    assert text == "naïve ✓\n" and offset == len("naïve ✓\n".encode())


def test_logs_of_a_mapped_instance_and_of_earlier_tries(tenant, etl, etl_run, api_for):
    ti = start(etl_run, "extract")
    with get_log_store().writer(ti, 1) as out:
        out.line("try one")
    services.finish_task_instance(ti, {"state": "failed", "error": "boom"})
    drive(etl_run, now=timezone.now() + dt.timedelta(hours=1))
    double = TaskInstance.objects.select_related("dag_run__dag").get(
        dag_run=etl_run, task_id="double", map_index=2
    )
    with get_log_store().writer(double, 1) as out:
        out.line("mapped two")
    client = api_for(tenant)
    first = client.get(api(tenant, f"{RUN}/taskInstances/extract/logs/1")).json()
    assert first == {"content": "try one\n", "next_offset": 8, "finished": True}
    mapped = client.get(api(tenant, f"{RUN}/taskInstances/double/logs/1"), {"map_index": 2}).json()
    assert mapped["content"] == "mapped two\n" and mapped["finished"] is True


@pytest.mark.parametrize(
    ("path", "query", "status", "message"),
    [
        ("extract/logs/2", {}, 404, "no try 2 (tries so far: 1)"),
        ("extract/logs/0", {}, 404, "no try 0"),
        ("double/logs/1", {}, 404, "has no task instance 'double'"),
        ("extract/logs/1", {"offset": -1}, 400, "offset"),
        ("extract/logs/1", {"limit": 0}, 400, "limit"),
        ("extract/logs/1", {"map_index": "x"}, 400, "map_index"),
    ],
)
def test_bad_log_requests(tenant, etl, etl_run, api_for, path, query, status, message):
    start(etl_run, "extract")
    response = api_for(tenant).get(api(tenant, f"{RUN}/taskInstances/{path}"), query)
    assert response.status_code == status and message in response.content.decode()


def test_logs_and_task_instances_of_dags_not_granted_are_not_found(tenant, etl, etl_run, member_client):
    ti = start(etl_run, "extract")
    with get_log_store().writer(ti, 1) as out:
        out.line("secret-ish output")
    client, membership = member_client(tenant, Role.VIEWER, grants_only=True)
    url = api(tenant, f"{RUN}/taskInstances/extract/logs/1")
    assert client.get(url).status_code == 404
    assert client.get(api(tenant, "dags/~/dagRuns/~/taskInstances")).json()["total_entries"] == 0
    grant(tenant, membership, etl.dag, "view_dag")
    assert client.get(url).json()["content"] == "secret-ish output\n"


# --- XCom -----------------------------------------------------------------------------------------------------


def test_xcom_entries_with_values_masked_by_key(tenant, etl, etl_run, api_for):
    push_xcom(etl_run, "extract", {"rows": 3, "token": "tok-123456"})
    push_xcom(etl_run, "extract", "s3cret-value", key="db_password")
    push_xcom(etl_run, "double", 4, map_index=1)
    client = api_for(tenant)
    body = client.get(api(tenant, f"{RUN}/taskInstances/extract/xcomEntries")).json()
    assert body["total_entries"] == 2
    values = {entry["key"]: entry["value"] for entry in body["xcom_entries"]}
    assert values == {"db_password": "***", "return_value": {"rows": 3, "token": "***"}}
    entry = client.get(api(tenant, f"{RUN}/taskInstances/extract/xcomEntries/return_value")).json()
    assert (
        entry["value"] == {"rows": 3, "token": "***"}
        and entry["dag_run_id"] == "r1"
        and entry["map_index"] == -1
    )
    url = api(tenant, f"{RUN}/taskInstances/double/xcomEntries/return_value")
    assert client.get(url, {"map_index": 1}).json()["value"] == 4
    assert client.get(url).status_code == 404  # the unmapped instance pushed nothing
    assert (
        client.get(api(tenant, f"{RUN}/taskInstances/double/xcomEntries"), {"map_index": 1}).json()[
            "total_entries"
        ]
        == 1
    )
    response = client.get(api(tenant, f"{RUN}/taskInstances/extract/xcomEntries/nope"))
    assert response.status_code == 404 and "has no XCom 'nope'" in response.json()["detail"]


def test_xcoms_of_another_tenant_are_not_found(tenant, other_tenant, api_for):
    run = make_run(other_tenant, etl_dag(), logical_date=START, run_id="r1")
    push_xcom(run, "extract", "theirs")
    client = api_for(tenant, Role.ADMIN)
    assert client.get(api(tenant, f"{RUN}/taskInstances/extract/xcomEntries")).status_code == 404
    assert client.get(api(tenant, f"{RUN}/taskInstances/extract/xcomEntries/return_value")).status_code == 404
    assert client.get(api(tenant, f"{RUN}/taskInstances/extract")).status_code == 404


def test_lists_take_a_bounded_number_of_queries(tenant, api_for, django_assert_max_num_queries):
    from tradewind.sdk import DAG, task

    with DAG("wide", schedule=None, start_date=START) as wide:

        @task
        def one(x: int) -> int:
            return x

        one.expand(x=list(range(30)))
    run = make_run(tenant, store_dag(tenant, wide), logical_date=START, run_id="r1")
    drive(run)
    for index in range(30):
        push_xcom(run, "one", index, map_index=index, key="extra")
    client = api_for(tenant)
    client.get(api(tenant, "dags/wide/dagRuns/r1/taskInstances"))
    with django_assert_max_num_queries(9):
        assert client.get(api(tenant, "dags/wide/dagRuns/r1/taskInstances")).json()["total_entries"] == 30
    with django_assert_max_num_queries(9):
        assert client.get(api(tenant, "dags/~/dagRuns/~/taskInstances")).json()["total_entries"] == 30
    with django_assert_max_num_queries(9):
        body = client.get(api(tenant, "dags/wide/dagRuns/r1/taskInstances/one/xcomEntries")).json()
    assert body["total_entries"] == 30
