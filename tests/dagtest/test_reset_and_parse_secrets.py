"""`dags test` with TriggerDagRunOperator(reset_dag_run=True) on a run that exists (the run is cleared and run
again, then reported), and `--tenant`'s secrets answering top-level lookups while the files are parsed."""

from __future__ import annotations

import json
from unittest.mock import ANY

import pytest

from tenants.models import Tenant
from tests.dagtest.conftest import DAGS
from tradewind.accounts.actors import Actor
from tradewind.secrets import services as secrets

pytestmark = pytest.mark.django_db(transaction=True)


def test_reset_dag_run_clears_and_reruns_the_existing_run(dags, out_dir):
    result = dags("test", str(DAGS / "reset"), "--json", "--conf", json.dumps({"out_dir": str(out_dir)}))

    assert result.exit_code == 0, result.stderr
    runs = {entry["dag_id"]: entry for entry in result.document["dags"]}
    assert runs["reset_parent"]["tasks"] == {"child_done": "success", "rerun_child": "success"}
    assert runs["reset_child"] == {
        "dag_id": "reset_child",
        "run_id": ANY,
        "state": "success",
        "tasks": {"record": "success"},
    }
    # The child's one run ran twice (a second try of the cleared task), with the conf it was created with.
    assert (out_dir / "reset_child.txt").read_text() == "try 1 changed=False\ntry 2 changed=False\n"
    assert not Tenant.objects.filter(slug__startswith="dags-test-").exists()


def test_tenant_secrets_answer_top_level_lookups_at_parse_time(dags, tenant):
    actor = Actor.system("tests")
    secrets.set_variable(tenant=tenant, actor=actor, key="tables", value='["orders", "customers"]')
    secrets.set_connection(
        tenant=tenant, actor=actor, fields={"conn_id": "warehouse", "conn_type": "postgres", "login": "etl"}
    )

    result = dags("test", str(DAGS / "parse_secrets"), "--json", "--tenant", tenant.slug)

    assert result.exit_code == 0, result.stderr
    assert result.document == {
        "dags": [
            {
                "dag_id": "load_as_etl",
                "run_id": ANY,
                "state": "success",
                "tasks": {"load_customers": "success", "load_orders": "success"},
            }
        ],
        "import_errors": {},
    }

    # Without --tenant the file is parsed in the throw-away tenant, which has no such variable.
    alone = dags("test", str(DAGS / "parse_secrets"), "--json")
    assert alone.exit_code == 1
    assert alone.document["dags"] == []
    (error,) = alone.document["import_errors"].values()
    assert "tables" in error
