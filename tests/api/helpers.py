"""Helpers for the REST API tests (and the security suite's probes of the API): URLs, a DAG with a bit of
everything the API shows, storing it as an upload would, and per-DAG grants."""

from __future__ import annotations

from typing import Any

from scheduler.dagparsing import dag_fields
from scheduler.models import Dag, DagVersion
from tenants.models import Membership, Tenant
from tests.factories import make_dag_version
from tests.scheduler.engine import START
from tradewind.accounts import grants
from tradewind.accounts.actors import Actor
from tradewind.sdk import DAG, Param, TaskGroup, task
from tradewind.sdk.operators.empty import EmptyOperator

ACTOR = Actor.system("tests")


def api(tenant: Tenant, path: str) -> str:
    """The URL of `path` in `tenant`'s API."""
    return f"/t/{tenant.slug}/api/v1/{path}"


def etl_dag(dag_id: str = "etl", *, tags: tuple[str, ...] = ("team-a",), schedule: Any = "@daily") -> DAG:
    """A DAG with a bit of everything the API shows: a task group, a mapped task, params, docs, tags."""
    with DAG(
        dag_id,
        schedule=schedule,
        start_date=START,
        tags=list(tags),
        doc_md="# ETL\nLoads the data.",
        description="extract, transform, load",
        params={"rows": Param(10, type="integer", minimum=1), "api_password": Param("hunter2-secret")},
        catchup=False,
    ) as dag:
        extract = EmptyOperator(task_id="extract", retries=2)

        @task
        def double(x: int) -> int:
            return 2 * x

        with TaskGroup("publish") as publish:
            EmptyOperator(task_id="load")
        extract >> double.expand(x=[1, 2, 3]) >> publish
    return dag


def store_dag(tenant: Tenant, sdk_dag: DAG) -> DagVersion:
    """Store an SDK DAG as its DAG's new active version, with the listing fields (tags, description,
    owners...) an upload's activation would set."""
    version = make_dag_version(tenant, sdk_dag)
    Dag.objects.filter(pk=version.dag_id).update(**dag_fields(version.serialized))
    return version


def grant(tenant: Tenant, membership: Membership, dag: Dag, *perms: str) -> None:
    """Give the member `perms` (view_dag, trigger_dag, change_dag) on `dag`."""
    grants.set_grant(tenant=tenant, actor=ACTOR, dag=dag, perms=list(perms), user=membership.user)
