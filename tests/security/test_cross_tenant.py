"""Another tenant's rows are not found (404) through every tenant API (each routed TenantViewSet), for every
tenant-owned model they serve."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from scheduler import services as engine
from scheduler.api import views as v
from scheduler.models import Asset, AssetEvent, Bundle, BundleVersion, DagRun, ParseImportError
from tenants.api.views import GrantViewSet, GroupViewSet, MembershipViewSet
from tenants.models import Membership, Tenant, TenantOwned
from tenants.roles import Role
from tenants.scoping import TenantViewSet
from tests.api.helpers import etl_dag
from tests.factories import BundleFactory, BundleVersionFactory, make_dag_version, make_run
from tests.scheduler.engine import START, push_xcom
from tradewind.accounts import grants
from tradewind.accounts import services as accounts
from tradewind.accounts.actors import Actor
from tradewind.accounts.api.views import ServiceAccountViewSet, TokenViewSet
from tradewind.audit.api.views import AuditEntryViewSet
from tradewind.secrets import services as secrets
from tradewind.secrets.api.views import ConnectionViewSet, VariableViewSet
from tradewind.secrets.models import Variable

ACTOR = Actor.system("tests")


def _viewsets() -> set[type]:
    """Every TenantViewSet routed in the URLconf."""
    found: set[type] = set()

    def walk(patterns: list) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                cls = getattr(pattern.callback, "cls", None)
                if cls is not None and issubclass(cls, TenantViewSet):
                    found.add(cls)

    walk(get_resolver().url_patterns)
    return found


@dataclass
class Target:
    """Where one tenant-owned row of the other tenant would be reached through our API: the list that must not
    show it, its detail URL (None for list-only APIs), the text that must never appear in our answers, and
    further (method, path) requests on it that must answer 404."""

    list_path: str
    detail_path: str | None
    marker: str
    more: list[tuple[str, str]] = field(default_factory=list)


# For each tenant API: create a row in `owner` (through the services where they exist) and say where our
# API would reach it.
def _membership(owner: Tenant, make_member: Callable, make_dag: Callable) -> Target:
    user = make_member(owner, Role.ADMIN, username="stranger-admin")
    return Target("members/", f"members/{Membership.objects.get(user=user).pk}/", "stranger-admin")


def _connection(owner, make_member, make_dag):
    secrets.set_connection(
        tenant=owner, actor=ACTOR, fields={"conn_id": "foreign_conn", "uri": "http://foreign.example"}
    )
    return Target("connections/", "connections/foreign_conn/", "foreign_conn")


def _variable(owner, make_member, make_dag):
    secrets.set_variable(tenant=owner, actor=ACTOR, key="foreign_var", value="foreign-value")
    return Target("variables/", "variables/foreign_var/", "foreign_var")


def _token(owner, make_member, make_dag):
    user = make_member(owner, Role.USER, username="token-owner")
    token, _ = accounts.create_token(tenant=owner, actor=ACTOR, user=user, name="foreign-token")
    return Target("tokens/", f"tokens/{token.pk}/", "foreign-token")


def _service_account(owner, make_member, make_dag):
    user = accounts.create_service_account(tenant=owner, actor=ACTOR, name="foreignbot", role=Role.VIEWER)
    return Target("service-accounts/", f"service-accounts/{user.pk}/", "foreignbot")


def _group(owner, make_member, make_dag):
    grants.ensure_group(tenant=owner, name="foreign-group")
    return Target("groups/", "groups/foreign-group/", "foreign-group")


def _grant(owner, make_member, make_dag):
    make_dag(owner, "foreign_dag")
    return Target("grants/", None, "foreign_dag")


RUN = "dags/foreign_dag/dagRuns/foreign_run"


def _foreign_run(owner: Tenant) -> DagRun:
    """The other tenant's DAG "foreign_dag" with a run "foreign_run" and an XCom of its first task."""
    version = make_dag_version(owner, etl_dag("foreign_dag"))
    run = make_run(owner, version, logical_date=START, run_id="foreign_run")
    push_xcom(run, "extract", "foreign-xcom-value")
    return run


def _dag(owner, make_member, make_dag):
    _foreign_run(owner)
    return Target(
        "dags/",
        "dags/foreign_dag/",
        "foreign_dag",
        [
            ("get", "dags/foreign_dag/tasks/"),
            ("get", "dags/foreign_dag/details/"),
            ("post", "dags/foreign_dag/dagRuns/"),
        ],
    )


def _dag_version(owner, make_member, make_dag):
    _foreign_run(owner)
    return Target("dags/foreign_dag/dagVersions/", "dags/foreign_dag/dagVersions/1/", "foreign_dag")


def _dag_run(owner, make_member, make_dag):
    _foreign_run(owner)
    return Target("dags/~/dagRuns/", f"{RUN}/", "foreign_run", [("post", f"{RUN}/clear/")])


def _task_instance(owner, make_member, make_dag):
    _foreign_run(owner)
    return Target(
        "dags/~/dagRuns/~/taskInstances/",
        f"{RUN}/taskInstances/extract/",
        "foreign_run",
        [
            ("get", f"{RUN}/taskInstances/"),
            ("get", f"{RUN}/taskInstances/extract/tries/"),
            ("get", f"{RUN}/taskInstances/extract/logs/1/"),
            ("get", f"{RUN}/taskInstances/double/listMapped/"),
            ("post", "dags/foreign_dag/clearTaskInstances/"),
        ],
    )


def _xcom(owner, make_member, make_dag):
    _foreign_run(owner)
    entries = f"{RUN}/taskInstances/extract/xcomEntries/"
    return Target(entries, f"{entries}return_value/", "foreign-xcom-value")


def _bundle_version(owner: Tenant) -> BundleVersion:
    version = BundleVersionFactory(bundle=BundleFactory(tenant=owner, name="foreign_bundle"))
    Bundle.objects.filter(pk=version.bundle_id).update(active_version=version)
    return version


def _bundle(owner, make_member, make_dag):
    _bundle_version(owner)
    return Target(
        "bundles/",
        "bundles/foreign_bundle/",
        "foreign_bundle",
        [("post", "bundles/foreign_bundle/rollback/")],
    )


def _bundle_version_target(owner, make_member, make_dag):
    _bundle_version(owner)
    versions = "bundles/foreign_bundle/versions/"
    return Target(versions, f"{versions}1/", "foreign_bundle", [("post", f"{versions}1/activate/")])


def _import_error(owner, make_member, make_dag):
    version = _bundle_version(owner)
    error = ParseImportError.objects.create(
        tenant=owner, bundle_version=version, filename="foreign.py", message="foreign failure"
    )
    return Target("importErrors/", f"importErrors/{error.pk}/", "foreign.py")


def _pool(owner, make_member, make_dag):
    engine.set_pool(tenant=owner, actor=ACTOR, name="foreign_pool", slots=3)
    return Target("pools/", "pools/foreign_pool/", "foreign_pool")


def _asset(owner, make_member, make_dag):
    asset = Asset.objects.create(tenant=owner, uri="s3://foreign-asset")
    return Target("assets/", f"assets/{asset.pk}/", "foreign-asset")


def _asset_event(owner, make_member, make_dag):
    asset = Asset.objects.create(tenant=owner, uri="s3://foreign-asset")
    AssetEvent.objects.create(tenant=owner, asset=asset, extra={"note": "foreign-event"})
    return Target("assets/events/", None, "foreign-event")


MAKERS = {
    MembershipViewSet: _membership,
    ConnectionViewSet: _connection,
    VariableViewSet: _variable,
    TokenViewSet: _token,
    ServiceAccountViewSet: _service_account,
    GroupViewSet: _group,
    GrantViewSet: _grant,
    v.DagViewSet: _dag,
    v.DagVersionViewSet: _dag_version,
    v.DagRunViewSet: _dag_run,
    v.TaskInstanceViewSet: _task_instance,
    v.XComViewSet: _xcom,
    v.BundleViewSet: _bundle,
    v.BundleVersionViewSet: _bundle_version_target,
    v.ImportErrorViewSet: _import_error,
    v.PoolViewSet: _pool,
    v.AssetViewSet: _asset,
    v.AssetEventViewSet: _asset_event,
}


def test_every_tenant_api_is_covered():
    served = _viewsets() - {AuditEntryViewSet}
    assert served <= set(MAKERS), f"add a maker for {served - set(MAKERS)}"
    for viewset in MAKERS:
        assert issubclass(viewset.queryset.model, TenantOwned)


@pytest.fixture
def stores(settings) -> Iterator[None]:
    """Task logs in a fresh directory (a probe reads one)."""
    root = Path(tempfile.mkdtemp(prefix="tw-cross-"))
    settings.LOG_ROOT = root / "logs"
    try:
        yield
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("viewset", list(MAKERS), ids=lambda cls: cls.__name__)
def test_other_tenants_rows_are_not_found(
    viewset, tenant, other_tenant, api_for, make_member, make_dag, stores
):
    target = MAKERS[viewset](other_tenant, make_member, make_dag)
    client = api_for(tenant, Role.ADMIN)
    ours = f"/t/{tenant.slug}/api/v1/"
    theirs = f"/t/{other_tenant.slug}/api/v1/"

    # Their URLs: 404 whatever the method, like a tenant that does not exist.
    assert client.get(theirs + target.list_path).status_code == 404
    assert client.post(theirs + target.list_path, {}, format="json").status_code == 404
    if target.detail_path:
        assert client.get(theirs + target.detail_path).status_code == 404
    # Our URLs never show or reach their row.
    if viewset is GrantViewSet:  # grants are read and set per DAG: their DAG is simply not found
        lookup = target.marker
        assert client.get(f"{ours}grants/?dag_id={lookup}").json() == {
            "detail": f"DAG {lookup!r} does not exist"
        }
        response = client.post(f"{ours}grants/", {"dag_id": lookup, "group": "x", "perms": []}, format="json")
        assert response.status_code == 404
        return
    listed = client.get(ours + target.list_path)
    assert listed.status_code in {200, 404}  # a list under their DAG or bundle: that parent is not found
    if listed.status_code == 200:
        assert target.marker not in listed.content.decode()
    actions = set(viewset.required)
    if target.detail_path and actions & {"retrieve", "partial_update", "destroy"}:
        assert client.get(ours + target.detail_path).status_code in {404, 405}
    if target.detail_path and "partial_update" in actions:
        body = {
            "role": "viewer",
            "members": [],
            "value": "x",
            "is_paused": True,
            "state": "failed",
            "slots": 1,
        }
        assert client.patch(ours + target.detail_path, body, format="json").status_code == 404
    if target.detail_path and "destroy" in actions:
        assert client.delete(ours + target.detail_path).status_code == 404
    for method, path in target.more:
        assert getattr(client, method)(ours + path, {}, format="json").status_code == 404, (method, path)
    assert viewset.queryset.model.objects.for_tenant(other_tenant).exists()


def test_audit_entries_of_another_tenant_are_invisible(tenant, other_tenant, api_for):
    secrets.set_variable(tenant=other_tenant, actor=ACTOR, key="foreign_var", value="v")
    client = api_for(tenant, Role.ADMIN)
    body = client.get(f"/t/{tenant.slug}/api/v1/audit/").content.decode()
    assert "foreign_var" not in body and "globex" not in body
    assert client.get(f"/t/{other_tenant.slug}/api/v1/audit/").status_code == 404


def test_ui_pages_of_another_tenant_are_not_found(tenant, other_tenant, browser_for):
    secrets.set_variable(tenant=other_tenant, actor=ACTOR, key="foreign_var", value="v")
    browser = browser_for(tenant, Role.ADMIN)
    for page in ("connections/", "variables/", "tokens/"):
        assert browser.get(f"/t/{other_tenant.slug}/{page}").status_code == 404
        assert b"foreign_var" not in browser.get(f"/t/{tenant.slug}/{page}").content
    response = browser.post(f"/t/{tenant.slug}/variables/", {"key": "foreign_var", "op": "delete"})
    assert response.status_code == 302
    assert Variable.objects.for_tenant(other_tenant).filter(key="foreign_var").exists()


def test_secret_reads_are_scoped(tenant, other_tenant):
    secrets.set_variable(tenant=other_tenant, actor=ACTOR, key="foreign_var", value="v")
    secrets.set_connection(tenant=other_tenant, actor=ACTOR, fields={"conn_id": "c", "uri": "http://h"})
    assert secrets.get_variable(tenant=tenant, key="foreign_var") is None
    assert secrets.get_connection(tenant=tenant, conn_id="c") is None
