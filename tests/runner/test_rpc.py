"""The parent's answers to a sandboxed task: XCom rules and limits, secrets with masking and audit, other
runs and DAGs — always within the task's own tenant."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from scheduler.models import DagRun, TaskInstance, XCom
from scheduler.states import DagRunState, TIState, transition
from tests.factories import make_dag_version, make_run
from tests.runner.conftest import ACTOR, start, start_run
from tradewind.audit.models import AuditEntry
from tradewind.sdk import DAG, Param, TaskGroup
from tradewind.sdk.exceptions import AirflowException, DagNotFound
from tradewind.sdk.operators.empty import EmptyOperator
from tradewind.secrets import services as secrets
from tradewind.secrets.masking import Masker
from workers.rpc import ParseRpcHandler, TaskRpcHandler

pytestmark = pytest.mark.django_db(transaction=True)


def sdk_dag(dag_id: str = "producer") -> DAG:
    with DAG(dag_id, schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        first = EmptyOperator(task_id="first")
        with TaskGroup("group"):
            inner = EmptyOperator(task_id="inner")
            with TaskGroup("nested"):
                deep = EmptyOperator(task_id="deep")
        first >> inner >> deep
    return dag


def handler_for(tenant, dag_id: str = "producer", *, secrets_tenant=None) -> TaskRpcHandler:
    """A handler for the running first task of a new run of `dag_id` in `tenant`."""
    make_dag_version(tenant, sdk_dag(dag_id))
    run = start_run(tenant, dag_id)
    ti = TaskInstance.objects.select_related("dag_run__dag").get(pk=start(run, "first").pk)
    return TaskRpcHandler(
        ti=ti, masker=Masker(), secrets_tenant_id=secrets_tenant.pk if secrets_tenant is not None else None
    )


# --- XCom -------------------------------------------------------------------------------------------------


def test_push_stores_json_with_its_size_and_pull_returns_rows_in_order(tenant):
    handler = handler_for(tenant)
    handler("xcom_push", {"key": "return_value", "value": {"rows": [1, 2, 3]}})
    handler("xcom_push", {"key": "return_value", "value": {"rows": [4]}})  # a second push replaces
    row = XCom.objects.get(dag_run=handler.ti.dag_run, task_id="first", key="return_value")
    assert row.value == {"rows": [4]} and row.size_bytes == len('{"rows":[4]}')
    XCom.objects.create(
        tenant=tenant, dag_run=handler.ti.dag_run, task_id="group.inner", map_index=1, key="k", value="b"
    )
    XCom.objects.create(
        tenant=tenant, dag_run=handler.ti.dag_run, task_id="group.inner", map_index=0, key="k", value="a"
    )
    run = handler.ti.dag_run
    pull = {"dag_id": "producer", "run_id": run.run_id, "key": "k"}
    assert handler("xcom_pull", {**pull, "task_ids": ["group.inner"], "map_indexes": None}) == [
        {"task_id": "group.inner", "map_index": 0, "value": "a"},
        {"task_id": "group.inner", "map_index": 1, "value": "b"},
    ]
    assert handler("xcom_pull", {**pull, "task_ids": ["group.inner"], "map_indexes": [1]}) == [
        {"task_id": "group.inner", "map_index": 1, "value": "b"}
    ]
    assert handler("xcom_pull", {**pull, "task_ids": ["nobody"], "map_indexes": None}) == []
    # No task filter (Airflow 2's task_ids=None): the rows of the task that stored the key last.
    handler("xcom_push", {"key": "k", "value": "mine"})
    assert handler("xcom_pull", {**pull, "task_ids": None, "map_indexes": None}) == [
        {"task_id": "first", "map_index": -1, "value": "mine"}
    ]
    assert handler("xcom_pull", {**pull, "key": "unpushed", "task_ids": None, "map_indexes": None}) == []


def test_include_prior_dates_reads_each_tasks_latest_run_at_or_before_the_callers(tenant):
    handler = handler_for(tenant, "consumer")
    now = handler.ti.dag_run.logical_date or handler.ti.dag_run.run_after
    version = make_dag_version(tenant, sdk_dag("producer"))
    for run_id, days_ago, value in (("old", 3, "old"), ("recent", 1, "recent"), ("future", -2, "future")):
        run = make_run(tenant, version, run_id=run_id, logical_date=now - timedelta(days=days_ago))
        XCom.objects.create(tenant=tenant, dag_run=run, task_id="first", key="k", value=value)
    old = DagRun.objects.get(dag__dag_id="producer", run_id="old")
    XCom.objects.create(tenant=tenant, dag_run=old, task_id="group.inner", key="k", value="only in old")
    pull = {"dag_id": "producer", "run_id": "no such run", "key": "k", "map_indexes": None}
    assert handler(
        "xcom_pull", {**pull, "task_ids": ["first", "group.inner"], "include_prior_dates": True}
    ) == [
        {"task_id": "first", "map_index": -1, "value": "recent"},  # not the run after the caller's
        {"task_id": "group.inner", "map_index": -1, "value": "only in old"},
    ]
    assert handler("xcom_pull", {**pull, "task_ids": ["first"]}) == []  # without it: the run named, none


def test_task_url_is_the_task_instances_page_under_the_base_url(tenant, settings):
    settings.TRADEWIND_BASE_URL = "https://tradewind.example.com"
    handler = handler_for(tenant)
    run_id = handler.ti.dag_run.run_id
    page = f"https://tradewind.example.com/t/{tenant.slug}/dags/producer/runs/{run_id}/tasks/first/"
    assert handler("task_url", {}) == page
    handler.ti.map_index = 2
    assert handler("task_url", {}) == page + "2/"


def test_a_push_is_one_fenced_upsert(tenant, django_assert_num_queries):
    handler = handler_for(tenant)
    for value in (1, {"rows": [2]}):  # an insert, then a conflict that replaces the value
        with django_assert_num_queries(1):
            handler("xcom_push", {"key": "return_value", "value": value})
    row = XCom.objects.get(dag_run=handler.ti.dag_run, key="return_value")
    assert row.value == {"rows": [2]} and row.size_bytes == len('{"rows":[2]}') and row.tenant_id == tenant.pk


def test_push_above_the_size_limit_is_refused_naming_task_key_and_size(tenant, settings):
    settings.TRADEWIND_XCOM_MAX_BYTES = 100
    handler = handler_for(tenant)
    with pytest.raises(ValueError) as refused:
        handler("xcom_push", {"key": "big", "value": "x" * 200})
    message = str(refused.value)
    assert "'big'" in message and "producer.first" in message
    assert (
        "202 bytes" in message and "limit of 100 bytes" in message and "TRADEWIND_XCOM_MAX_BYTES" in message
    )
    assert not XCom.objects.filter(key="big").exists()
    handler("xcom_push", {"key": "small", "value": "x" * 90})
    assert XCom.objects.filter(key="small").exists()


def test_push_of_nan_is_refused(tenant):
    handler = handler_for(tenant)
    with pytest.raises(ValueError, match="not valid JSON"):
        handler("xcom_push", {"key": "ratio", "value": math.nan})


def test_push_from_a_try_that_is_no_longer_running_is_refused(tenant):
    handler = handler_for(tenant)
    ti = TaskInstance.objects.get(pk=handler.ti.pk)
    assert transition(ti, TIState.SUCCESS)
    with pytest.raises(RuntimeError, match="no longer running"):
        handler("xcom_push", {"key": "late", "value": 1})


def test_deferred_pushes_wait_for_the_finish_unless_the_child_asks_something_else(tenant):
    handler = handler_for(tenant)
    handler.defer_xcoms = True
    stored = XCom.objects.filter(dag_run=handler.ti.dag_run, task_id="first")
    handler("xcom_push", {"key": "return_value", "value": 1})
    handler("xcom_push", {"key": "return_value", "value": 2})  # a second push replaces, still
    handler("mask_secret", {"value": "hunter2"})
    assert not stored.exists() and handler.pending_xcoms == {"return_value": (2, 1)}
    with pytest.raises(ValueError, match="above the limit"):  # checked at once all the same
        handler("xcom_push", {"key": "big", "value": "x" * 10**7})
    pull = {"dag_id": "producer", "run_id": handler.ti.dag_run.run_id, "task_ids": ["first"]}
    assert handler("xcom_pull", {**pull, "key": "return_value", "map_indexes": None}) == [
        {"task_id": "first", "map_index": -1, "value": 2}
    ]
    assert handler.pending_xcoms == {} and stored.get().value == 2


def test_pull_never_reads_another_tenants_run_even_with_the_same_ids(tenant, other_tenant):
    victim = handler_for(other_tenant)
    victim("xcom_push", {"key": "return_value", "value": "other tenant's secret"})
    victim_run = victim.ti.dag_run
    mine = handler_for(tenant)  # same dag_id "producer" in my tenant
    pull = {
        "dag_id": "producer",
        "run_id": victim_run.run_id,
        "task_ids": ["first"],
        "key": "return_value",
        "map_indexes": None,
    }
    if victim_run.run_id != mine.ti.dag_run.run_id:
        assert mine("xcom_pull", pull) == []
    mine("xcom_push", {"key": "return_value", "value": "mine"})
    rows = mine("xcom_pull", {**pull, "run_id": mine.ti.dag_run.run_id})
    assert rows == [{"task_id": "first", "map_index": -1, "value": "mine"}]


# --- secrets ---------------------------------------------------------------------------------------------


def test_connection_and_sensitive_variable_are_masked_and_audited(tenant):
    secrets.set_connection(
        tenant=tenant,
        actor=ACTOR,
        fields={
            "conn_id": "warehouse",
            "conn_type": "postgres",
            "host": "db",
            "login": "etl",
            "password": "pa55-word-xyz",
            "extra": '{"api_token": "tok-98765"}',
        },
    )
    secrets.set_variable(tenant=tenant, actor=ACTOR, key="partner_api_key", value="key-abcdef")
    secrets.set_variable(tenant=tenant, actor=ACTOR, key="region", value="eu-west-1")
    handler = handler_for(tenant)
    conn = handler("get_connection", {"conn_id": "warehouse"})
    assert conn["password"] == "pa55-word-xyz" and conn["login"] == "etl"
    assert handler("get_variable", {"key": "partner_api_key"}) == "key-abcdef"
    assert handler("get_variable", {"key": "region"}) == "eu-west-1"
    text = "pa55-word-xyz tok-98765 key-abcdef eu-west-1"
    assert handler.masker.mask(text) == "*** *** *** eu-west-1"
    reads = AuditEntry.objects.filter(chain=tenant.pk, action="secret.read")
    assert {entry.detail["name"] for entry in reads} >= {"warehouse", "partner_api_key", "region"}
    assert all("producer.first" in entry.actor_label for entry in reads)
    assert handler("get_connection", {"conn_id": "nope"}) is None
    assert handler("get_variable", {"key": "nope"}) is None


def test_secrets_of_another_tenant_are_invisible(tenant, other_tenant):
    secrets.set_variable(tenant=other_tenant, actor=ACTOR, key="their_secret", value="not-yours-123")
    handler = handler_for(tenant)
    assert handler("get_variable", {"key": "their_secret"}) is None
    assert handler("get_connection", {"conn_id": "their_secret"}) is None


def test_secrets_tenant_answers_secrets_while_the_rest_stays_in_the_tasks_tenant(tenant, other_tenant):
    secrets.set_variable(tenant=other_tenant, actor=ACTOR, key="db_password", value="from-the-real-tenant")
    handler = handler_for(tenant, secrets_tenant=other_tenant)
    assert handler("get_variable", {"key": "db_password"}) == "from-the-real-tenant"
    assert handler.masker.mask("from-the-real-tenant") == "***"
    handler("set_variable", {"key": "written", "value": "v"})
    assert secrets.get_variable(tenant=other_tenant, key="written") == "v"
    assert (
        handler("get_dag_run_state", {"dag_id": "producer", "run_id": handler.ti.dag_run.run_id}) == "running"
    )


def test_mask_secret_masks_from_then_on(tenant):
    handler = handler_for(tenant)
    handler("mask_secret", {"value": "generated-token-42"})
    assert handler.masker.mask("use generated-token-42") == "use ***"


# --- other runs and DAGs ---------------------------------------------------------------------------------


def test_trigger_creates_a_run_in_the_same_tenant_once(tenant):
    handler = handler_for(tenant)
    make_dag_version(tenant, sdk_dag("target"))
    args = {
        "dag_id": "target",
        "run_id": "from_task",
        "conf": {"n": 1},
        "logical_date": None,
        "reset_dag_run": False,
    }
    result = handler("trigger_dag_run", args)
    assert result["run_id"] == "from_task" and result["already_exists"] is False
    run = DagRun.objects.get(tenant=tenant, dag__dag_id="target", run_id="from_task")
    assert run.conf == {"n": 1} and run.run_type == "manual"
    again = handler("trigger_dag_run", args)
    assert again["already_exists"] is True and again["run_id"] == "from_task"
    reset = handler("trigger_dag_run", {**args, "reset_dag_run": True, "conf": {"n": 2}})
    assert reset["run_id"] == "from_task"
    # Cleared, not replaced (tests/runner/test_trigger_reset.py): the same run, its conf unchanged.
    assert DagRun.objects.get(tenant=tenant, dag__dag_id="target", run_id="from_task") == run
    assert DagRun.objects.get(pk=run.pk).conf == {"n": 1}


def test_trigger_of_an_unknown_or_other_tenants_dag_is_refused(tenant, other_tenant):
    make_dag_version(other_tenant, sdk_dag("their_dag"))
    handler = handler_for(tenant)
    args = {"run_id": None, "conf": {}, "logical_date": None, "reset_dag_run": False}
    with pytest.raises(DagNotFound, match="their_dag"):
        handler("trigger_dag_run", {"dag_id": "their_dag", **args})
    with pytest.raises(DagNotFound):
        handler("trigger_dag_run", {"dag_id": "no_such_dag", **args})
    assert not DagRun.objects.filter(dag__dag_id="their_dag").exists()


def test_trigger_with_conf_refused_by_params_is_an_airflow_exception(tenant):
    with DAG(
        "strict", schedule=None, start_date=datetime(2024, 1, 1), params={"n": Param(1, type="integer")}
    ) as strict:
        EmptyOperator(task_id="only")
    make_dag_version(tenant, strict)
    handler = handler_for(tenant)
    with pytest.raises(AirflowException):
        handler(
            "trigger_dag_run",
            {
                "dag_id": "strict",
                "run_id": None,
                "conf": {"n": "not a number"},
                "logical_date": None,
                "reset_dag_run": False,
            },
        )


def test_run_state_and_counts_see_only_the_tasks_tenant(tenant, other_tenant):
    theirs = handler_for(other_tenant)
    mine = handler_for(tenant)
    run = mine.ti.dag_run
    assert mine("get_dag_run_state", {"dag_id": "producer", "run_id": run.run_id}) == DagRunState.RUNNING
    assert mine("get_dag_run_state", {"dag_id": "producer", "run_id": "nope"}) is None
    if theirs.ti.dag_run.run_id != run.run_id:
        assert mine("get_dag_run_state", {"dag_id": "producer", "run_id": theirs.ti.dag_run.run_id}) is None
    dates = [run.logical_date.isoformat()]
    count = {"dag_id": "producer", "logical_dates": dates}
    assert mine("count_dag_runs", {**count, "states": ["running"]}) == 1
    assert mine("count_dag_runs", {**count, "states": ["success"]}) == 0
    tasks = {**count, "task_group_id": None}
    assert mine("count_task_states", {**tasks, "task_ids": ["first"], "states": ["running"]}) == 1
    assert mine("count_task_states", {**tasks, "task_ids": None, "states": ["running", "none", None]}) == 3
    group = {**count, "task_ids": None, "task_group_id": "group"}
    assert mine("count_task_states", {**group, "states": [None, "none"]}) == 2  # inner and nested.deep


def test_unknown_requests_and_bad_arguments_are_errors(tenant):
    handler = handler_for(tenant)
    with pytest.raises(ValueError, match="unknown request 'drop_tables'"):
        handler("drop_tables", {})
    with pytest.raises(TypeError):
        handler("xcom_push", {"key": "k", "value": 1, "tenant_id": 99})
    with pytest.raises(TypeError):
        handler("get_variable", {"key": 5})


def test_parse_handler_answers_only_secret_lookups(tenant):
    secrets.set_variable(tenant=tenant, actor=ACTOR, key="env", value="prod")
    handler = ParseRpcHandler(tenant_id=tenant.pk)
    assert handler("get_variable", {"key": "env"}) == "prod"
    assert handler("get_connection", {"conn_id": "none_here"}) is None
    with pytest.raises(RuntimeError, match="not available while a DAG file is being parsed"):
        handler("xcom_push", {"key": "k", "value": 1})
