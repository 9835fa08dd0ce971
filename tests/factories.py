"""Shared test factories: tenant-scoped bundles, DAGs, DAG versions and runs, built from REAL SDK DAGs.

A DAG version's `serialized` is what `tradewind.sdk.serialization.serialize_dag` makes of a real
`tradewind.sdk` DAG object, so tests run the engine on exactly what a parsed upload would store, without
uploading a bundle. Every row of one graph stays in one tenant.

    version = make_dag_version(tenant, sdk_dag)          # Bundle "default" + BundleVersion + Dag + DagVersion
    run = make_run(tenant, sdk_dag, conf={"x": 1})        # ...and a queued run with its task instances
    run = make_run(tenant, version)                       # a run of an existing version
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import datetime
from typing import Any

import factory
from factory.django import DjangoModelFactory

from scheduler.models import Bundle, BundleVersion, Dag, DagRun, DagVersion
from scheduler.states import RunType
from tenants.models import Tenant
from tradewind.sdk.serialization import dag_hash, serialize_dag

_serial = itertools.count(1)


def serialize(sdk_dag: Any) -> dict:
    """The stored serialization of an SDK DAG (a dict passes through unchanged)."""
    return sdk_dag if isinstance(sdk_dag, dict) else serialize_dag(sdk_dag)


class BundleFactory(DjangoModelFactory):
    """A DAG repository of `tenant` (get-or-create by name)."""

    class Meta:
        model = Bundle
        django_get_or_create = ("tenant", "name")

    name = "default"


class BundleVersionFactory(DjangoModelFactory):
    """An active, already parsed version of a bundle (no files: the engine never reads them)."""

    class Meta:
        model = BundleVersion

    bundle = factory.SubFactory(BundleFactory)
    tenant = factory.SelfAttribute("bundle.tenant")
    number = factory.LazyAttribute(lambda o: (o.bundle.versions.count() if o.bundle.pk else 0) + 1)
    content_hash = factory.LazyFunction(lambda: hashlib.sha256(str(next(_serial)).encode()).hexdigest())
    size_bytes = 0
    file_count = 0
    state = BundleVersion.State.ACTIVE


class DagFactory(DjangoModelFactory):
    """A DAG row (get-or-create by dag_id within the tenant)."""

    class Meta:
        model = Dag
        django_get_or_create = ("tenant", "dag_id")

    bundle = factory.SubFactory(BundleFactory)
    tenant = factory.SelfAttribute("bundle.tenant")
    dag_id = factory.Sequence(lambda n: f"dag_{n}")
    fileloc = factory.LazyAttribute(lambda o: f"{o.dag_id}.py")


def make_dag_version(
    tenant: Tenant, sdk_dag: Any, *, bundle_name: str = "default", activate: bool = True
) -> DagVersion:
    """Store `sdk_dag` (an SDK DAG object, or its serialization) as a new version of its DAG in `tenant`.

    Creates the bundle, a bundle version and the Dag row as needed; with `activate` (the default) the
    version becomes the DAG's active version, as an upload would make it.
    """
    serialized = serialize(sdk_dag)
    bundle = BundleFactory(tenant=tenant, name=bundle_name)
    bundle_version = BundleVersionFactory(bundle=bundle)
    bundle.active_version = bundle_version
    bundle.save(update_fields=["active_version"])
    dag = DagFactory(
        tenant=tenant,
        bundle=bundle,
        dag_id=serialized["dag_id"],
        fileloc=serialized.get("fileloc") or f"{serialized['dag_id']}.py",
    )
    version = DagVersion.objects.create(
        tenant=tenant,
        dag=dag,
        number=dag.versions.count() + 1,
        hash=dag_hash(serialized),
        serialized=serialized,
        bundle_version=bundle_version,
    )
    if activate:
        dag.active_version = version
        dag.is_active = True
        dag.max_active_tasks = serialized.get("max_active_tasks") or dag.max_active_tasks
        dag.max_active_runs = serialized.get("max_active_runs") or dag.max_active_runs
        dag.schedule = serialized.get("schedule")
        dag.save()
    return version


def make_run(
    tenant: Tenant,
    sdk_dag_or_version: Any,
    *,
    run_type: RunType = RunType.MANUAL,
    logical_date: datetime | None = None,
    data_interval: tuple[datetime, datetime] | None = None,
    conf: dict | None = None,
    run_id: str | None = None,
) -> DagRun:
    """A queued run (with its task instances) of an SDK DAG, a serialization, or an existing DagVersion,
    created through `scheduler.services.create_dag_run` exactly as the product creates runs."""
    from scheduler import services
    from tradewind.accounts.actors import Actor

    if isinstance(sdk_dag_or_version, DagVersion):
        version = sdk_dag_or_version
    else:
        version = make_dag_version(tenant, sdk_dag_or_version)
    return services.create_dag_run(
        tenant=tenant,
        dag=version.dag,
        actor=Actor.system("tests"),
        run_type=run_type,
        logical_date=logical_date,
        data_interval=data_interval,
        conf=conf,
        run_id=run_id,
        dag_version=version,
    )
