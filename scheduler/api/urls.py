"""Routes of the tenant API, under `/t/<slug>/api/v1/`, with Airflow's resource names (dagRuns, taskInstances,
xcomEntries, importErrors...). `~` as a dag_id or dag_run_id lists across every DAG or run. Every route answers
with and without a trailing slash: Airflow's clients send none, our other tenant APIs use one."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from scheduler.api import schema  # noqa: F401  (registers the OpenAPI token scheme)
from scheduler.api import views as v

DAG = "dags/<str:dag_id>"
RUN = f"{DAG}/dagRuns/<str:dag_run_id>"
TI = f"{RUN}/taskInstances/<str:task_id>"
MAPPED = f"{TI}/<int:map_index>"

dags = v.DagViewSet.as_view
versions = v.DagVersionViewSet.as_view
runs = v.DagRunViewSet.as_view
tis = v.TaskInstanceViewSet.as_view
xcoms = v.XComViewSet.as_view
bundles = v.BundleViewSet.as_view
bundle_versions = v.BundleVersionViewSet.as_view
import_errors = v.ImportErrorViewSet.as_view
pools = v.PoolViewSet.as_view
assets = v.AssetViewSet.as_view
asset_events = v.AssetEventViewSet.as_view


def route(pattern: str, view: Callable[..., HttpResponse], name: str) -> list[URLPattern]:
    """`pattern/` (named, in the OpenAPI schema) and `pattern` (Airflow's spelling) for the same view."""
    return [path(f"{pattern}/", view, name=name), path(pattern, _unlisted(view))]


def _unlisted(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """`view` behind a plain function, so the schema lists each endpoint once (it lists viewset callbacks)."""

    @csrf_exempt  # as DRF's own views: authentication classes decide about CSRF
    def unlisted(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        return view(request, *args, **kwargs)

    return unlisted


routes = [
    route("dags", dags({"get": "list"}), name="dag-list"),
    route(DAG, dags({"get": "retrieve", "patch": "partial_update"}), name="dag-detail"),
    # Airflow's separate details endpoint: the same answer as the DAG itself (listed once in the schema).
    [
        path(f"{DAG}/details/", _unlisted(dags({"get": "retrieve"}))),
        path(f"{DAG}/details", _unlisted(dags({"get": "retrieve"}))),
    ],
    route(f"{DAG}/tasks", dags({"get": "tasks"}), name="dag-tasks"),
    route(f"{DAG}/tasks/<str:task_id>", dags({"get": "task"}), name="dag-task"),
    route(f"{DAG}/dagVersions", versions({"get": "list"}), name="dagversion-list"),
    route(f"{DAG}/dagVersions/<int:version_number>", versions({"get": "retrieve"}), name="dagversion-detail"),
    route(f"{DAG}/dagRuns", runs({"get": "list", "post": "create"}), name="dagrun-list"),
    route(
        RUN,
        runs({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="dagrun-detail",
    ),
    route(f"{RUN}/clear", runs({"post": "clear"}), name="dagrun-clear"),
    route(f"{DAG}/clearTaskInstances", tis({"post": "clear"}), name="taskinstance-clear"),
    route(f"{RUN}/taskInstances", tis({"get": "list"}), name="taskinstance-list"),
    route(TI, tis({"get": "retrieve", "patch": "partial_update"}), name="taskinstance-detail"),
    route(f"{TI}/listMapped", tis({"get": "list_mapped"}), name="taskinstance-mapped"),
    route(f"{TI}/tries", tis({"get": "tries"}), name="taskinstance-tries"),
    route(f"{TI}/tries/<int:try_number>", tis({"get": "try_detail"}), name="taskinstance-try"),
    route(f"{TI}/logs/<int:try_number>", tis({"get": "logs"}), name="taskinstance-logs"),
    route(f"{TI}/xcomEntries", xcoms({"get": "list"}), name="xcom-list"),
    route(f"{TI}/xcomEntries/<str:xcom_key>", xcoms({"get": "retrieve"}), name="xcom-detail"),
    route(
        MAPPED,
        tis({"get": "retrieve_mapped", "patch": "partial_update_mapped"}),
        name="taskinstance-mapped-detail",
    ),
    route(f"{MAPPED}/tries", tis({"get": "tries_mapped"}), name="taskinstance-mapped-tries"),
    route(
        f"{MAPPED}/tries/<int:try_number>", tis({"get": "try_detail_mapped"}), name="taskinstance-mapped-try"
    ),
    route("bundles", bundles({"get": "list"}), name="bundle-list"),
    route("bundles/<str:bundle_name>", bundles({"get": "retrieve"}), name="bundle-detail"),
    route("bundles/<str:bundle_name>/rollback", bundles({"post": "rollback"}), name="bundle-rollback"),
    route(
        "bundles/<str:bundle_name>/versions",
        bundle_versions({"get": "list", "post": "create"}),
        name="bundleversion-list",
    ),
    route(
        "bundles/<str:bundle_name>/versions/<int:version_number>",
        bundle_versions({"get": "retrieve"}),
        name="bundleversion-detail",
    ),
    route(
        "bundles/<str:bundle_name>/versions/<int:version_number>/activate",
        bundle_versions({"post": "activate"}),
        name="bundleversion-activate",
    ),
    route("importErrors", import_errors({"get": "list"}), name="importerror-list"),
    route(
        "importErrors/<int:import_error_id>", import_errors({"get": "retrieve"}), name="importerror-detail"
    ),
    route("pools", pools({"get": "list", "post": "create"}), name="pool-list"),
    route(
        "pools/<str:pool_name>",
        pools({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="pool-detail",
    ),
    route("assets", assets({"get": "list"}), name="asset-list"),
    route("assets/events", asset_events({"get": "list"}), name="assetevent-list"),
    route("assets/<int:asset_id>", assets({"get": "retrieve"}), name="asset-detail"),
]
urlpatterns = [pattern for pair in routes for pattern in pair]
