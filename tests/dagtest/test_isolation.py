"""`dags test` keeps tenants apart and secrets out of logs: another tenant's XComs read as absent, its DAGs
cannot be triggered, an oversized XCom fails clearly, and a password a task prints shows as ***."""

from __future__ import annotations

from datetime import datetime

import pytest

from scheduler import dagtest
from scheduler.models import Asset, AssetEvent, DagRun, XCom
from tenants.models import Tenant
from tests.dagtest.conftest import DAGS
from tests.factories import make_run
from tradewind.accounts.actors import Actor
from tradewind.sdk import DAG
from tradewind.sdk.operators.empty import EmptyOperator
from tradewind.secrets import services as secrets

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Tr0ub4dor-and-3"
API_KEY = "pk_live_51HxYz"


@pytest.fixture
def victim_run(other_tenant) -> DagRun:
    """Another tenant's run whose task pushed an XCom."""
    with DAG("victim", schedule=None, start_date=datetime(2024, 1, 1)) as victim:
        EmptyOperator(task_id="secret_task")
    run = make_run(other_tenant, victim)
    XCom.objects.create(
        tenant=other_tenant,
        dag_run=run,
        task_id="secret_task",
        key="return_value",
        value="another tenant's data",
    )
    orders = Asset.objects.create(tenant=other_tenant, uri="s3://shared/orders")
    AssetEvent.objects.create(tenant=other_tenant, asset=orders, source_dag_run=run, extra={"rows": 999})
    return run


def test_isolation_folder(tenant, other_tenant, victim_run):
    actor = Actor.system("tests")
    secrets.set_connection(
        tenant=tenant,
        actor=actor,
        fields={"conn_id": "warehouse", "conn_type": "postgres", "login": "etl", "password": PASSWORD},
    )
    secrets.set_variable(tenant=tenant, actor=actor, key="partner_api_key", value=API_KEY)
    conf = {"victim_dag": "victim", "victim_run": victim_run.run_id, "victim_task": "secret_task"}

    report = dagtest.run_dags_test(path=DAGS / "isolation", conf=conf, secrets_tenant=tenant)

    runs = {entry["dag_id"]: entry for entry in report.document["dags"]}
    problems = {f"{p.dag_id}.{p.task}": p for p in report.task_problems}
    # Another tenant's XCom reads as absent; its DAG cannot be triggered; the tenant's own DAG can.
    assert runs["cross_tenant"]["tasks"] == {
        "peek": "success",
        "trigger_other_tenant": "failed",
        "trigger_own": "success",
    }
    refused = problems["cross_tenant.trigger_other_tenant"].error
    assert refused.startswith("DagNotFound") and "victim" in refused
    assert DagRun.objects.filter(tenant=other_tenant).count() == 1
    assert runs["triggered_target"]["state"] == "success"

    # An XCom above TRADEWIND_XCOM_MAX_BYTES fails its task with an error naming task, key and size.
    assert runs["xcom_limit"]["tasks"] == {"too_big": "failed", "small": "success"}
    assert problems["xcom_limit.too_big"].error == (
        "ValueError: XCom 'return_value' of task xcom_limit.too_big is 2097154 bytes, above the limit of "
        "1048576 bytes (TRADEWIND_XCOM_MAX_BYTES); store large data elsewhere and push a reference to it"
    )

    # inlet_events: the run's own events of its inlets (none of the other tenant's events of the same URI);
    # an extra JSON cannot hold fails the task that set it, and the run goes on.
    assert runs["inlet_events"]["tasks"] == {
        "count": "success",
        "stamp": "success",
        "through_alias": "success",
        "to_named": "success",
        "unstorable": "failed",
        "read": "success",
    }
    assert problems["inlet_events.unstorable"].error == (
        "TypeError: The extra of asset 's3://shared/orders' holds a value of type object, which JSON cannot store"
    )

    # The connection's password and the sensitive variable (read from --tenant's secrets) show as ***.
    leak = problems["masking.leak"]
    assert "connecting as etl with password ***" in leak.log_tail
    assert "api key is ***" in leak.log_tail
    assert leak.error == "ValueError: login refused for etl with password ***"
    assert PASSWORD not in leak.log_tail + leak.error and API_KEY not in leak.log_tail

    assert not report.succeeded
    assert not Tenant.objects.filter(slug__startswith="dags-test-").exists()
