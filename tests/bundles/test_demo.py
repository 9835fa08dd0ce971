"""The demo tenant's example repository: loaded once, every DAG parses, every DAG runs with `dags test`."""

from __future__ import annotations

import time

import pytest

from scheduler import dagtest
from scheduler.bundles import DEMO_DAGS, load_demo_bundle
from scheduler.models import Bundle, Dag

DEMO_DAG_IDS = [
    "demo_branching",
    "demo_dynamic_mapping",
    "demo_etl_with_retries",
    "demo_sensor",
    "demo_task_groups",
    "demo_taskflow_xcom",
]


@pytest.mark.django_db
def test_demo_repository_is_loaded_on_the_first_start_only(tenant):
    result = load_demo_bundle(tenant)
    assert result is not None
    assert result.import_errors == {}
    assert result.dags == DEMO_DAG_IDS
    assert sorted(Dag.objects.for_tenant(tenant).filter(is_active=True).values_list("dag_id", flat=True)) == (
        DEMO_DAG_IDS
    )
    assert load_demo_bundle(tenant) is None
    assert Bundle.objects.for_tenant(tenant).get().versions.count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_demo_dag_runs_to_success_quickly():
    started = time.monotonic()
    document = dagtest.test_dags(
        path=DEMO_DAGS, dag_id=None, logical_date=None, conf=None, secrets_tenant=None
    )
    assert time.monotonic() - started < 60
    assert document["import_errors"] == {}
    states = {run["dag_id"]: run["state"] for run in document["dags"]}
    assert states == dict.fromkeys(DEMO_DAG_IDS, "success"), document
    tasks = {run["dag_id"]: run["tasks"] for run in document["dags"]}
    assert tasks["demo_dynamic_mapping"]["measure[2]"] == "success"
    assert sorted(state for state in tasks["demo_branching"].values()).count("skipped") == 1
