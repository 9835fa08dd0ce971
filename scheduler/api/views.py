"""The tenant's REST API under `/t/<slug>/api/v1/`, shaped like Airflow's stable REST API.

HTTP only: every read goes through TenantViewSet's scoped querysets (another tenant's rows and, for members
limited to granted DAGs, DAGs without a grant are simply not found), every write through a service
(scheduler.services, scheduler.bundles), and domain errors become 400/404/409 in the one exception handler.
Lists answer Airflow's `{"<collection>": [...], "total_entries": n}` with `limit`/`offset` and `order_by`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from django.db import connections
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Sum
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from scheduler import bundles, queries, services
from scheduler.api import serializers as s
from scheduler.assets import event_keys, schedule_keys
from scheduler.models import (
    NO_MAP_INDEX,
    Asset,
    AssetEvent,
    Bundle,
    BundleVersion,
    Dag,
    DagRun,
    DagVersion,
    ParseImportError,
    Pool,
    TaskInstance,
    TaskInstanceHistory,
    XCom,
)
from scheduler.states import FINISHED, TIState
from tenants.roles import can
from tenants.scoping import HasAction, TenantViewSet
from tradewind.accounts.grants import filter_granted
from tradewind.errors import Conflict, Invalid, NotFound
from workers.logs import get_log_store

ANY = "~"  # Airflow's "every DAG" / "every run" in list URLs
LOG_LIMIT_DEFAULT = 256 * 1024
LOG_LIMIT_MAX = 4 * 1024 * 1024
# A try whose task instance is in one of these states (with that try number) may still write to its log.
TRY_GOES_ON = frozenset(
    {TIState.QUEUED, TIState.RUNNING, TIState.DEFERRED, TIState.UP_FOR_RESCHEDULE, TIState.RESTARTING}
)


# --- Shared machinery -------------------------------------------------------------------------------------


def paginated(collection: str) -> type[LimitOffsetPagination]:
    """Airflow's pagination for one collection: `limit` (default 100, at most 1000) and `offset`; the answer
    is `{collection: [...], "total_entries": n}`. A limit or offset that is not a number is a 400."""

    class AirflowPagination(LimitOffsetPagination):
        default_limit = 100
        max_limit = 1000

        def get_limit(self, request: Request) -> int:
            return min(
                _int_param(request, self.limit_query_param, self.default_limit, minimum=1), self.max_limit
            )

        def get_offset(self, request: Request) -> int:
            return _int_param(request, self.offset_query_param, 0, minimum=0)

        def get_paginated_response(self, data: Any) -> Response:
            return Response({collection: data, "total_entries": self.count})

        def get_paginated_response_schema(self, schema: dict) -> dict:
            return {
                "type": "object",
                "required": [collection, "total_entries"],
                "properties": {collection: schema, "total_entries": {"type": "integer"}},
            }

    AirflowPagination.__name__ = f"{collection.title().replace('_', '')}Pagination"
    return AirflowPagination


def _int_param(request: Request, name: str, default: int, *, minimum: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise Invalid(f"{name} must be at least {minimum}")
    return value


@functools.cache
def collection_of(key: str, item: type[serializers.Serializer]) -> serializers.Serializer:
    """The OpenAPI shape of a list answer."""
    return inline_serializer(
        name=f"{item.__name__.removesuffix('Serializer')}Collection",
        fields={key: item(many=True), "total_entries": serializers.IntegerField()},
    )


def _path(name: str, kind: OpenApiTypes = OpenApiTypes.STR) -> OpenApiParameter:
    return OpenApiParameter(name, kind, OpenApiParameter.PATH)


TI_PATH = [_path("dag_id"), _path("dag_run_id"), _path("task_id")]
MAPPED_PATH = [*TI_PATH, _path("map_index", OpenApiTypes.INT)]


class ApiViewSet(TenantViewSet):
    """Base of the API's viewsets: Airflow's query-string parsing, ordering, paging, and DAG lookups that
    answer 404 for a DAG the member may not see and 403 for one they may see but not act on."""

    ordering: dict[str, str] = {}  # Airflow's order_by names -> model fields
    default_order: tuple[str, ...] = ("pk",)

    def query(self, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
        """The query string validated by `serializer_class` (repeated parameters for list fields)."""
        params = self.request.query_params
        data: dict[str, Any] = {}
        for name, field in serializer_class().fields.items():
            if name in params:
                data[name] = (
                    params.getlist(name) if isinstance(field, serializers.ListField) else params[name]
                )
        parsed = serializer_class(data=data)
        parsed.is_valid(raise_exception=True)
        return dict(parsed.validated_data)

    def order(self, qs: QuerySet, order_by: str | None) -> QuerySet:
        """`qs` in Airflow's `order_by` order ("-" reverses), ties broken by the default order."""
        if not order_by:
            return qs.order_by(*self.default_order)
        name = order_by.removeprefix("-")
        if name not in self.ordering:
            choices = ", ".join(sorted(self.ordering))
            raise Invalid(f"order_by {order_by!r} is not one of: {choices} (prefix '-' to reverse)")
        field = self.ordering[name]
        return qs.order_by(f"-{field}" if order_by.startswith("-") else field, *self.default_order)

    def page(
        self, qs: QuerySet | list, serializer_class: type[serializers.Serializer], **context: Any
    ) -> Response:
        """One page of `qs` in Airflow's collection shape."""
        rows = self.paginate_queryset(qs)
        return self.get_paginated_response(serializer_class(rows, many=True, context=context).data)

    def visible_dags(self) -> QuerySet[Dag]:
        """The tenant's DAGs this member may see."""
        return filter_granted(
            self.request.membership, Dag.objects.for_tenant(self.request.tenant), "dag.view"
        )

    def get_dag(self, dag_id: str, *, acting: bool = False) -> Dag:
        """The DAG `dag_id` if the member may see it (else 404); with `acting`, also allowed to perform this
        view action on it (else 403)."""
        dag = self.visible_dags().filter(dag_id=dag_id).first()
        if dag is None:
            raise NotFound(f"DAG {dag_id!r} does not exist")
        if acting and not can(self.request.membership, self.required[self.action], dag):
            raise PermissionDenied(HasAction.message)
        return dag

    def get_run(self, dag: Dag, dag_run_id: str) -> DagRun:
        """The run `dag_run_id` of a DAG already checked by get_dag()."""
        return queries.get_dag_run(tenant=self.request.tenant, dag_id=dag.dag_id, run_id=dag_run_id)

    def found(self, qs: QuerySet, message: str) -> Any:
        """The one row of `qs` after the view action's per-DAG checks; NotFound(message) when there is none."""
        obj = qs.first()
        if obj is None:
            raise NotFound(message)
        self.check_object_permissions(self.request, obj)
        return obj

    def reload(self, obj: Any) -> Any:
        """`obj` read again through this view's queryset, after a service changed it."""
        return self.get_queryset().get(pk=obj.pk)


def _run_message(dag_id: str, dag_run_id: str) -> str:
    return f"DAG {dag_id!r} has no run {dag_run_id!r}"


def _ti_message(dag_id: str, dag_run_id: str, task_id: str, map_index: int) -> str:
    label = queries.ti_label(task_id, map_index)
    return f"run {dag_run_id!r} of DAG {dag_id!r} has no task instance {label!r}"


def _with_any_tag(qs: QuerySet[Dag], tags: list[str]) -> QuerySet[Dag]:
    if connections[qs.db].features.supports_json_field_contains:
        match = Q()
        for tag in tags:
            match |= Q(tags__contains=[tag])
        return qs.filter(match)
    # SQLite (the embedded default) cannot look inside JSON lists: match the tags here, in one query.
    wanted = set(tags)
    return qs.filter(
        pk__in=[pk for pk, dag_tags in qs.values_list("pk", "tags") if wanted & set(dag_tags or [])]
    )


# --- DAGs -------------------------------------------------------------------------------------------------


class DagViewSet(ApiViewSet):
    """The tenant's DAGs: list with Airflow's filters, details of the active version, its tasks, pause."""

    queryset = Dag.objects.all()
    dag_field = ""
    pagination_class = paginated("dags")
    required = {
        "list": "dag.view",
        "retrieve": "dag.view",
        "tasks": "dag.view",
        "task": "dag.view",
        "partial_update": "dag.edit",
    }
    ordering = {
        "dag_id": "dag_id",
        "dag_display_name": "dag_id",
        "last_parsed_time": "last_parsed_at",
        "next_dagrun": "next_dagrun_data_interval_start",
        "is_paused": "is_paused",
        "fileloc": "fileloc",
    }
    default_order = ("dag_id",)

    def scope_queryset(self, qs: QuerySet) -> QuerySet:
        errors = ParseImportError.objects.filter(
            bundle_version=OuterRef("bundle__active_version"), filename=OuterRef("fileloc")
        )
        return qs.select_related("bundle").annotate(has_import_errors=Exists(errors))

    def _dag(self, dag_id: str) -> Dag:
        qs = self.get_queryset().select_related("active_version").filter(dag_id=dag_id)
        return self.found(qs, f"DAG {dag_id!r} does not exist")

    @extend_schema(operation_id="get_dags", parameters=[s.DagListQuery], responses=s.DagSerializer)
    def list(self, request: Request) -> Response:
        params = self.query(s.DagListQuery)
        qs = self.get_queryset()
        if params["only_active"]:
            qs = qs.filter(is_active=True)
        if params["paused"] is not None:
            qs = qs.filter(is_paused=params["paused"])
        if params.get("dag_id_pattern"):
            qs = qs.filter(dag_id__icontains=params["dag_id_pattern"])
        if params.get("tags"):
            qs = _with_any_tag(qs, params["tags"])
        return self.page(self.order(qs, params.get("order_by")), s.DagSerializer)

    @extend_schema(operation_id="get_dag", parameters=[_path("dag_id")], responses=s.DagDetailSerializer)
    def retrieve(self, request: Request, dag_id: str) -> Response:
        return Response(s.DagDetailSerializer(self._dag(dag_id)).data)

    @extend_schema(
        operation_id="patch_dag",
        parameters=[_path("dag_id")],
        request=s.DagPatchSerializer,
        responses=s.DagSerializer,
    )
    def partial_update(self, request: Request, dag_id: str) -> Response:
        dag = self._dag(dag_id)
        params = s.DagPatchSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        services.set_paused(
            tenant=request.tenant,
            actor=request.actor,
            dag=dag,
            is_paused=params.validated_data["is_paused"],
            request=request,
        )
        return Response(s.DagSerializer(self.reload(dag)).data)

    @extend_schema(
        operation_id="get_tasks",
        parameters=[_path("dag_id")],
        responses=collection_of("tasks", s.TaskSerializer),
    )
    def tasks(self, request: Request, dag_id: str) -> Response:
        dag = self._dag(dag_id)
        tasks = dag.active_version.serialized.get("tasks", []) if dag.active_version else []
        return Response({"tasks": s.TaskSerializer(tasks, many=True).data, "total_entries": len(tasks)})

    @extend_schema(
        operation_id="get_task", parameters=[_path("dag_id"), _path("task_id")], responses=s.TaskSerializer
    )
    def task(self, request: Request, dag_id: str, task_id: str) -> Response:
        dag = self._dag(dag_id)
        tasks = dag.active_version.serialized.get("tasks", []) if dag.active_version else []
        for task in tasks:
            if task.get("task_id") == task_id:
                return Response(s.TaskSerializer(task).data)
        raise NotFound(f"DAG {dag_id!r} has no task {task_id!r}")


class DagVersionViewSet(ApiViewSet):
    """Every stored serialization of a DAG (Airflow 3's dagVersions); one version with its JSON."""

    queryset = DagVersion.objects.all()
    dag_field = "dag"
    pagination_class = paginated("dag_versions")
    required = {"list": "dag.view", "retrieve": "dag.view"}
    ordering = {"id": "pk", "version_number": "number", "created_at": "created_at"}
    default_order = ("number",)

    def scope_queryset(self, qs: QuerySet) -> QuerySet:
        return qs.select_related("dag", "bundle_version__bundle")

    @extend_schema(
        operation_id="get_dag_versions",
        parameters=[_path("dag_id"), s.OrderedQuery],
        responses=s.DagVersionSerializer,
    )
    def list(self, request: Request, dag_id: str) -> Response:
        dag = self.get_dag(dag_id)
        qs = self.get_queryset().filter(dag=dag).defer("serialized")
        return self.page(self.order(qs, self.query(s.OrderedQuery).get("order_by")), s.DagVersionSerializer)

    @extend_schema(
        operation_id="get_dag_version",
        parameters=[_path("dag_id"), _path("version_number", OpenApiTypes.INT)],
        responses=s.DagVersionDetailSerializer,
    )
    def retrieve(self, request: Request, dag_id: str, version_number: int) -> Response:
        qs = self.get_queryset().filter(dag__dag_id=dag_id, number=version_number)
        version = self.found(qs, f"DAG {dag_id!r} has no version {version_number}")
        return Response(s.DagVersionDetailSerializer(version).data)


# --- DAG runs ---------------------------------------------------------------------------------------------


class DagRunViewSet(ApiViewSet):
    """Runs of one DAG (or of every DAG: `dag_id` "~"): list, read, trigger, mark, delete, clear."""

    queryset = DagRun.objects.all()
    dag_field = "dag"
    pagination_class = paginated("dag_runs")
    required = {
        "list": "run.view",
        "retrieve": "run.view",
        "create": "run.trigger",
        "partial_update": "run.mark",
        "destroy": "run.delete",
        "clear": "run.clear",
    }
    ordering = {
        "id": "pk",
        "dag_id": "dag__dag_id",
        "dag_run_id": "run_id",
        "state": "state",
        "run_type": "run_type",
        "logical_date": "logical_date",
        "execution_date": "logical_date",
        "queued_at": "queued_at",
        "start_date": "start_date",
        "end_date": "end_date",
        "run_after": "run_after",
    }
    RANGES = {
        "logical_date": "logical_date",
        "execution_date": "logical_date",
        "start_date": "start_date",
        "end_date": "end_date",
        "run_after": "run_after",
    }

    def scope_queryset(self, qs: QuerySet) -> QuerySet:
        return qs.select_related("dag", "dag_version", "triggered_by")

    def _run(self, dag_id: str, dag_run_id: str) -> DagRun:
        qs = self.get_queryset().filter(dag__dag_id=dag_id, run_id=dag_run_id)
        return self.found(qs, _run_message(dag_id, dag_run_id))

    @extend_schema(
        operation_id="get_dag_runs",
        parameters=[_path("dag_id"), s.DagRunListQuery],
        responses=s.DagRunSerializer,
    )
    def list(self, request: Request, dag_id: str) -> Response:
        params = self.query(s.DagRunListQuery)
        qs = self.get_queryset()
        if dag_id != ANY:
            qs = qs.filter(dag=self.get_dag(dag_id))
        if params.get("state"):
            qs = qs.filter(state__in=params["state"])
        if params.get("run_type"):
            qs = qs.filter(run_type__in=params["run_type"])
        for name, field in self.RANGES.items():
            if f"{name}_gte" in params:
                qs = qs.filter(**{f"{field}__gte": params[f"{name}_gte"]})
            if f"{name}_lte" in params:
                qs = qs.filter(**{f"{field}__lte": params[f"{name}_lte"]})
        return self.page(self.order(qs, params.get("order_by")), s.DagRunSerializer)

    @extend_schema(
        operation_id="get_dag_run",
        parameters=[_path("dag_id"), _path("dag_run_id")],
        responses=s.DagRunSerializer,
    )
    def retrieve(self, request: Request, dag_id: str, dag_run_id: str) -> Response:
        return Response(s.DagRunSerializer(self._run(dag_id, dag_run_id)).data)

    @extend_schema(
        operation_id="post_dag_run",
        parameters=[_path("dag_id")],
        request=s.TriggerSerializer,
        responses=s.DagRunSerializer,
    )
    def create(self, request: Request, dag_id: str) -> Response:
        dag = self.get_dag(dag_id, acting=True)
        params = s.TriggerSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        run = services.trigger_run(
            tenant=request.tenant,
            actor=request.actor,
            dag=dag,
            conf=data.get("conf"),
            logical_date=data.get("logical_date"),
            run_id=data.get("dag_run_id"),
            note=data.get("note") or "",
            request=request,
        )
        return Response(s.DagRunSerializer(self.reload(run)).data)  # Airflow answers 200 here

    @extend_schema(
        operation_id="update_dag_run_state",
        parameters=[_path("dag_id"), _path("dag_run_id")],
        request=s.DagRunPatchSerializer,
        responses=s.DagRunSerializer,
    )
    def partial_update(self, request: Request, dag_id: str, dag_run_id: str) -> Response:
        run = self._run(dag_id, dag_run_id)
        params = s.DagRunPatchSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        services.set_run_state(
            tenant=request.tenant,
            actor=request.actor,
            run=run,
            state=params.validated_data["state"],
            request=request,
        )
        return Response(s.DagRunSerializer(self.reload(run)).data)

    @extend_schema(
        operation_id="delete_dag_run",
        parameters=[_path("dag_id"), _path("dag_run_id")],
        responses={204: None},
    )
    def destroy(self, request: Request, dag_id: str, dag_run_id: str) -> Response:
        run = self._run(dag_id, dag_run_id)
        services.delete_run(tenant=request.tenant, actor=request.actor, run=run, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="clear_dag_run",
        parameters=[_path("dag_id"), _path("dag_run_id")],
        request=s.ClearRunSerializer,
        responses={200: collection_of("task_instances", s.TaskInstanceSerializer)},
        description="A dry run (the default) lists the task instances that would be cleared; otherwise the "
        "run is cleared and returned.",
    )
    def clear(self, request: Request, dag_id: str, dag_run_id: str) -> Response:
        run = self._run(dag_id, dag_run_id)
        params = s.ClearRunSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        tis = services.clear_run(
            tenant=request.tenant,
            actor=request.actor,
            run=run,
            only_failed=params.validated_data["only_failed"],
            dry_run=params.validated_data["dry_run"],
            request=request,
        )
        if params.validated_data["dry_run"]:
            return _task_instances(run, tis)
        return Response(s.DagRunSerializer(self.reload(run)).data)


def _task_instances(run: DagRun, tis: list[TaskInstance]) -> Response:
    """A service's task instances of `run` as a collection (they all belong to `run`: no query per row)."""
    for ti in tis:
        ti.dag_run = run
    data = s.TaskInstanceSerializer(tis, many=True).data
    return Response({"task_instances": data, "total_entries": len(data)})


# --- Task instances, their tries, logs and XComs ---------------------------------------------------------


def _try_is_over(ti: TaskInstance, try_number: int) -> bool:
    """Has try `try_number` of `ti` ended (so its log will not grow any more)?"""
    if try_number < ti.try_number or ti.state in FINISHED:
        return True
    if ti.state in TRY_GOES_ON:
        return False
    if ti.state == TIState.SCHEDULED:  # resuming the same try, unless that try ended in a retry
        return ti.history.filter(try_number=try_number).exists()
    return True  # none (cleared) or up_for_retry


def _complete_utf8(data: bytes) -> int:
    """How many bytes of `data` end on a character boundary (a character cut at the end is left for the next
    read, so a client following the log by offset never sees it broken in two)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # the first byte of the last character
            size = 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4 if byte >> 3 == 0b11110 else 1
            return len(data) - back if size > back else len(data)
    return len(data)


class TaskInstanceViewSet(ApiViewSet):
    """Task instances of a run (or of every run: "~"), by task id and map index; their tries, their logs
    (followed by offset while the try runs), marking them and clearing them."""

    queryset = TaskInstance.objects.all()
    dag_field = "dag_run__dag"
    pagination_class = paginated("task_instances")
    required = {
        "list": "run.view",
        "list_mapped": "run.view",
        "retrieve": "run.view",
        "retrieve_mapped": "run.view",
        "tries": "run.view",
        "tries_mapped": "run.view",
        "try_detail": "run.view",
        "try_detail_mapped": "run.view",
        "logs": "log.view",
        "partial_update": "run.mark",
        "partial_update_mapped": "run.mark",
        "clear": "run.clear",
    }
    ordering = {
        "dag_id": "dag_run__dag__dag_id",
        "dag_run_id": "dag_run__run_id",
        "task_id": "task_id",
        "map_index": "map_index",
        "state": "state",
        "try_number": "try_number",
        "start_date": "start_date",
        "end_date": "end_date",
        "duration": "duration",
        "priority_weight": "priority_weight",
        "pool": "pool",
        "queue": "queue",
    }
    default_order = ("dag_run_id", "task_id", "map_index")

    def scope_queryset(self, qs: QuerySet) -> QuerySet:
        return qs.select_related("dag_run__dag")

    def _ti(self, dag_id: str, dag_run_id: str, task_id: str, map_index: int) -> TaskInstance:
        qs = self.get_queryset().filter(
            dag_run__dag__dag_id=dag_id, dag_run__run_id=dag_run_id, task_id=task_id, map_index=map_index
        )
        return self.found(qs, _ti_message(dag_id, dag_run_id, task_id, map_index))

    def _of_run(self, dag_id: str, dag_run_id: str) -> QuerySet:
        qs = self.get_queryset()
        if dag_id != ANY:
            dag = self.get_dag(dag_id)
            if dag_run_id != ANY:
                return qs.filter(dag_run=self.get_run(dag, dag_run_id))
            qs = qs.filter(dag_run__dag=dag)
        if dag_run_id != ANY:
            qs = qs.filter(dag_run__run_id=dag_run_id)
        return qs

    def _filtered(self, qs: QuerySet, params: dict[str, Any]) -> QuerySet:
        if params.get("state"):
            qs = qs.filter(state__in=params["state"])
        if "task_id" in params:
            qs = qs.filter(task_id=params["task_id"])
        if "map_index" in params:
            qs = qs.filter(map_index=params["map_index"])
        if params.get("pool"):
            qs = qs.filter(pool__in=params["pool"])
        if params.get("queue"):
            qs = qs.filter(queue__in=params["queue"])
        return self.order(qs, params.get("order_by"))

    @extend_schema(
        operation_id="get_task_instances",
        parameters=[_path("dag_id"), _path("dag_run_id"), s.TaskInstanceListQuery],
        responses=s.TaskInstanceSerializer,
    )
    def list(self, request: Request, dag_id: str, dag_run_id: str) -> Response:
        params = self.query(s.TaskInstanceListQuery)
        return self.page(self._filtered(self._of_run(dag_id, dag_run_id), params), s.TaskInstanceSerializer)

    @extend_schema(
        operation_id="get_mapped_task_instances",
        parameters=[_path("dag_id"), _path("dag_run_id"), _path("task_id"), s.TaskInstanceListQuery],
        responses=collection_of("task_instances", s.TaskInstanceSerializer),
    )
    def list_mapped(self, request: Request, dag_id: str, dag_run_id: str, task_id: str) -> Response:
        params = self.query(s.TaskInstanceListQuery)
        qs = self._of_run(dag_id, dag_run_id).filter(task_id=task_id, map_index__gte=0)
        return self.page(self._filtered(qs, params), s.TaskInstanceSerializer)

    @extend_schema(
        operation_id="get_task_instance", parameters=TI_PATH, responses=s.TaskInstanceDetailSerializer
    )
    def retrieve(
        self, request: Request, dag_id: str, dag_run_id: str, task_id: str, map_index: int = NO_MAP_INDEX
    ) -> Response:
        return Response(s.TaskInstanceDetailSerializer(self._ti(dag_id, dag_run_id, task_id, map_index)).data)

    @extend_schema(
        operation_id="get_mapped_task_instance",
        parameters=MAPPED_PATH,
        responses=s.TaskInstanceDetailSerializer,
    )
    def retrieve_mapped(
        self, request: Request, dag_id: str, dag_run_id: str, task_id: str, map_index: int
    ) -> Response:
        return self.retrieve(request, dag_id, dag_run_id, task_id, map_index)

    def _tries(self, ti: TaskInstance) -> list[TaskInstance | TaskInstanceHistory]:
        """Every try so far: the ended ones from the history, then the current one if it has no history row."""
        tries: list[TaskInstance | TaskInstanceHistory] = list(
            TaskInstanceHistory.objects.filter(task_instance=ti).order_by("try_number")
        )
        if ti.try_number > 0 and ti.try_number not in {attempt.try_number for attempt in tries}:
            tries.append(ti)
        return tries

    @extend_schema(
        operation_id="get_task_instance_tries",
        parameters=TI_PATH,
        responses=collection_of("task_instances", s.TaskInstanceTrySerializer),
    )
    def tries(
        self, request: Request, dag_id: str, dag_run_id: str, task_id: str, map_index: int = NO_MAP_INDEX
    ) -> Response:
        ti = self._ti(dag_id, dag_run_id, task_id, map_index)
        data = s.TaskInstanceTrySerializer(self._tries(ti), many=True, context={"ti": ti}).data
        return Response({"task_instances": data, "total_entries": len(data)})

    @extend_schema(
        operation_id="get_mapped_task_instance_tries",
        parameters=MAPPED_PATH,
        responses=collection_of("task_instances", s.TaskInstanceTrySerializer),
    )
    def tries_mapped(
        self, request: Request, dag_id: str, dag_run_id: str, task_id: str, map_index: int
    ) -> Response:
        return self.tries(request, dag_id, dag_run_id, task_id, map_index)

    @extend_schema(
        operation_id="get_task_instance_try_details",
        parameters=[*TI_PATH, _path("try_number", OpenApiTypes.INT)],
        responses=s.TaskInstanceTrySerializer,
    )
    def try_detail(
        self,
        request: Request,
        dag_id: str,
        dag_run_id: str,
        task_id: str,
        try_number: int,
        map_index: int = NO_MAP_INDEX,
    ) -> Response:
        ti = self._ti(dag_id, dag_run_id, task_id, map_index)
        for attempt in self._tries(ti):
            if attempt.try_number == try_number:
                return Response(s.TaskInstanceTrySerializer(attempt, context={"ti": ti}).data)
        raise NotFound(f"{_ti_message(dag_id, dag_run_id, task_id, map_index)}: no try {try_number}")

    @extend_schema(
        operation_id="get_mapped_task_instance_try_details",
        parameters=[*MAPPED_PATH, _path("try_number", OpenApiTypes.INT)],
        responses=s.TaskInstanceTrySerializer,
    )
    def try_detail_mapped(
        self, request: Request, dag_id: str, dag_run_id: str, task_id: str, map_index: int, try_number: int
    ) -> Response:
        return self.try_detail(request, dag_id, dag_run_id, task_id, try_number, map_index)

    @extend_schema(
        operation_id="get_log",
        parameters=[*TI_PATH, _path("try_number", OpenApiTypes.INT), s.LogQuery],
        responses=s.LogChunkSerializer,
        description="Up to `limit` bytes of one try's (already masked) log from byte `offset`; follow a running "
        "try by asking again from `next_offset` until `finished`.",
    )
    def logs(self, request: Request, dag_id: str, dag_run_id: str, task_id: str, try_number: int) -> Response:
        params = self.query(s.LogQuery)
        ti = self._ti(dag_id, dag_run_id, task_id, params["map_index"])
        if not 1 <= try_number <= ti.try_number:
            message = _ti_message(dag_id, dag_run_id, task_id, params["map_index"])
            raise NotFound(f"{message}: no try {try_number} (tries so far: {ti.try_number})")
        store = get_log_store()
        limit = min(params.get("limit") or LOG_LIMIT_DEFAULT, LOG_LIMIT_MAX)
        # Decide "over" before reading: a try that ends in between is then read once more, never cut short.
        over = _try_is_over(ti, try_number)
        data = store.read(ti, try_number, offset=params["offset"], limit=limit)
        used = _complete_utf8(data) or len(data)
        next_offset = params["offset"] + used
        finished = over and next_offset >= store.size(ti, try_number)
        content = data[:used].decode("utf-8", "replace")
        return Response({"content": content, "next_offset": next_offset, "finished": finished})

    @extend_schema(
        operation_id="patch_task_instance",
        parameters=TI_PATH,
        request=s.TaskInstancePatchSerializer,
        responses=collection_of("task_instances", s.TaskInstanceSerializer),
    )
    def partial_update(
        self, request: Request, dag_id: str, dag_run_id: str, task_id: str, map_index: int = NO_MAP_INDEX
    ) -> Response:
        ti = self._ti(dag_id, dag_run_id, task_id, map_index)
        params = s.TaskInstancePatchSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        changed = services.set_task_instance_state(
            tenant=request.tenant,
            actor=request.actor,
            ti=ti,
            state=params.validated_data["new_state"],
            upstream=params.validated_data["include_upstream"],
            downstream=params.validated_data["include_downstream"],
            request=request,
        )
        return _task_instances(ti.dag_run, changed)

    @extend_schema(
        operation_id="patch_mapped_task_instance",
        parameters=MAPPED_PATH,
        request=s.TaskInstancePatchSerializer,
        responses=collection_of("task_instances", s.TaskInstanceSerializer),
    )
    def partial_update_mapped(
        self, request: Request, dag_id: str, dag_run_id: str, task_id: str, map_index: int
    ) -> Response:
        return self.partial_update(request, dag_id, dag_run_id, task_id, map_index)

    @extend_schema(
        operation_id="post_clear_task_instances",
        parameters=[_path("dag_id")],
        request=s.ClearTaskInstancesSerializer,
        responses=collection_of("task_instances", s.TaskInstanceSerializer),
        description="Clear task instances of one run (Airflow's defaults: a dry run, only failed ones).",
    )
    def clear(self, request: Request, dag_id: str) -> Response:
        dag = self.get_dag(dag_id, acting=True)
        params = s.ClearTaskInstancesSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        run = self.get_run(dag, data["dag_run_id"])
        cleared = services.clear_task_instances(
            tenant=request.tenant,
            actor=request.actor,
            run=run,
            task_ids=data.get("task_ids"),
            map_indexes=data.get("map_indexes"),
            downstream=data["include_downstream"],
            upstream=data["include_upstream"],
            only_failed=data["only_failed"],
            dry_run=data["dry_run"],
            request=request,
        )
        return _task_instances(run, cleared)


class XComViewSet(ApiViewSet):
    """XCom entries of a task instance (all map indexes unless `map_index` is given); values masked by key."""

    queryset = XCom.objects.all()
    dag_field = "dag_run__dag"
    pagination_class = paginated("xcom_entries")
    required = {"list": "run.view", "retrieve": "run.view"}
    ordering = {"key": "key", "map_index": "map_index", "timestamp": "timestamp"}
    default_order = ("map_index", "key")

    def scope_queryset(self, qs: QuerySet) -> QuerySet:
        return qs.select_related("dag_run__dag")

    @extend_schema(
        operation_id="get_xcom_entries",
        parameters=[_path("dag_id"), _path("dag_run_id"), _path("task_id"), s.XComListQuery],
        responses=s.XComSerializer,
    )
    def list(self, request: Request, dag_id: str, dag_run_id: str, task_id: str) -> Response:
        params = self.query(s.XComListQuery)
        run = self.get_run(self.get_dag(dag_id), dag_run_id)
        qs = self.get_queryset().filter(dag_run=run, task_id=task_id)
        if "map_index" in params:
            qs = qs.filter(map_index=params["map_index"])
        return self.page(self.order(qs, params.get("order_by")), s.XComSerializer)

    @extend_schema(
        operation_id="get_xcom_entry",
        parameters=[
            _path("dag_id"),
            _path("dag_run_id"),
            _path("task_id"),
            _path("xcom_key"),
            s.MapIndexQuery,
        ],
        responses=s.XComSerializer,
    )
    def retrieve(
        self, request: Request, dag_id: str, dag_run_id: str, task_id: str, xcom_key: str
    ) -> Response:
        map_index = self.query(s.MapIndexQuery)["map_index"]
        qs = self.get_queryset().filter(
            dag_run__dag__dag_id=dag_id,
            dag_run__run_id=dag_run_id,
            task_id=task_id,
            map_index=map_index,
            key=xcom_key,
        )
        label = queries.ti_label(task_id, map_index)
        xcom = self.found(qs, f"{label!r} of run {dag_run_id!r} of DAG {dag_id!r} has no XCom {xcom_key!r}")
        return Response(s.XComSerializer(xcom).data)


# --- DAG repositories and import errors -------------------------------------------------------------------


class BundleViewSet(ApiViewSet):
    """The tenant's DAG repositories; roll one back to an earlier version."""

    queryset = Bundle.objects.all()
    pagination_class = paginated("bundles")
    required = {"list": "bundle.view", "retrieve": "bundle.view", "rollback": "bundle.upload"}
    ordering = {"name": "name", "created_at": "created_at"}
    default_order = ("name",)

    def scope_queryset(self, qs: QuerySet) -> QuerySet:
        return qs.select_related("active_version")

    def _bundle(self, bundle_name: str) -> Bundle:
        return self.found(
            self.get_queryset().filter(name=bundle_name), f"bundle {bundle_name!r} does not exist"
        )

    @extend_schema(
        operation_id="get_bundles",
        parameters=[s.OrderedQuery],
        responses=s.BundleSerializer,
    )
    def list(self, request: Request) -> Response:
        return self.page(
            self.order(self.get_queryset(), self.query(s.OrderedQuery).get("order_by")), s.BundleSerializer
        )

    @extend_schema(operation_id="get_bundle", parameters=[_path("bundle_name")], responses=s.BundleSerializer)
    def retrieve(self, request: Request, bundle_name: str) -> Response:
        return Response(s.BundleSerializer(self._bundle(bundle_name)).data)

    @extend_schema(
        operation_id="rollback_bundle",
        parameters=[_path("bundle_name")],
        request=s.RollbackSerializer,
        responses=s.BundleVersionSerializer,
    )
    def rollback(self, request: Request, bundle_name: str) -> Response:
        bundle = self._bundle(bundle_name)
        params = s.RollbackSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        version = bundles.rollback(
            tenant=request.tenant,
            actor=request.actor,
            bundle=bundle,
            number=params.validated_data["version_number"],
        )
        return Response(s.BundleVersionSerializer(version).data)


class BundleVersionViewSet(ApiViewSet):
    """Versions of a DAG repository: list, read, upload a new one, activate one."""

    queryset = BundleVersion.objects.all()
    pagination_class = paginated("bundle_versions")
    required = {
        "list": "bundle.view",
        "retrieve": "bundle.view",
        "create": "bundle.upload",
        "activate": "bundle.upload",
    }
    ordering = {"version_number": "number", "created_at": "created_at"}
    default_order = ("-number",)

    def scope_queryset(self, qs: QuerySet) -> QuerySet:
        return qs.select_related("bundle", "uploaded_by")

    def _version(self, bundle_name: str, version_number: int) -> BundleVersion:
        qs = self.get_queryset().filter(bundle__name=bundle_name, number=version_number)
        return self.found(qs, f"bundle {bundle_name!r} has no version {version_number}")

    @extend_schema(
        operation_id="get_bundle_versions",
        parameters=[_path("bundle_name"), s.OrderedQuery],
        responses=s.BundleVersionSerializer,
    )
    def list(self, request: Request, bundle_name: str) -> Response:
        bundle = Bundle.objects.for_tenant(request.tenant).filter(name=bundle_name).first()
        if bundle is None:
            raise NotFound(f"bundle {bundle_name!r} does not exist")
        qs = self.get_queryset().filter(bundle=bundle)
        return self.page(
            self.order(qs, self.query(s.OrderedQuery).get("order_by")), s.BundleVersionSerializer
        )

    @extend_schema(
        operation_id="get_bundle_version",
        parameters=[_path("bundle_name"), _path("version_number", OpenApiTypes.INT)],
        responses=s.BundleVersionSerializer,
    )
    def retrieve(self, request: Request, bundle_name: str, version_number: int) -> Response:
        return Response(s.BundleVersionSerializer(self._version(bundle_name, version_number)).data)

    @extend_schema(
        operation_id="upload_bundle_version",
        parameters=[_path("bundle_name"), s.UploadOptionsSerializer],
        request={
            "multipart/form-data": s.UploadSerializer,
            "application/octet-stream": OpenApiTypes.BINARY,
            "application/zip": OpenApiTypes.BINARY,
            "application/gzip": OpenApiTypes.BINARY,
        },
        responses={201: s.UploadResultSerializer, 200: s.UploadResultSerializer},
        description="Upload a .zip or .tar.gz of the repository, as the multipart field `file` or as the "
        "request body (options then in the query string). 201 with the new version, 200 when the content is "
        "the active version already; 400 when the archive breaks a rule; 413 when it is far too large.",
    )
    def create(self, request: Request, bundle_name: str) -> Response:
        limit = 2 * request.tenant.max_bundle_bytes + (1 << 20)  # what scheduler.bundles would spool at most
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise Invalid("the Content-Length header is not a number") from None
        if length > limit:
            return Response(
                {"detail": f"the upload is {length} bytes, above this tenant's limit of {limit} bytes"},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        if request.content_type.startswith("multipart/form-data"):
            params = s.UploadSerializer(data=request.data)
            params.is_valid(raise_exception=True)
            options = dict(params.validated_data)
            source = options.pop("file", None)
            if source is None:
                raise Invalid("send the archive in the multipart field 'file' (or as the request body)")
        else:
            options = self.query(s.UploadOptionsSerializer)
            if length == 0:
                raise Invalid("the request has no archive: send a .zip or .tar.gz as the body or as 'file'")
            source = request.stream  # the raw body, read as it comes: never held in memory whole
        result = bundles.upload_bundle(
            tenant=request.tenant, actor=request.actor, source=source, bundle_name=bundle_name, **options
        )
        version = self.reload(result.version)
        unchanged = not result.activated and version.state == BundleVersion.State.ACTIVE
        body = s.UploadResultSerializer(
            {
                "version": version,
                "activated": result.activated,
                "dags": result.dags,
                "import_errors": [
                    {"filename": name, "stack_trace": message}
                    for name, message in sorted(result.import_errors.items())
                ],
            }
        ).data
        return Response(body, status=status.HTTP_200_OK if unchanged else status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="activate_bundle_version",
        parameters=[_path("bundle_name"), _path("version_number", OpenApiTypes.INT)],
        request=None,
        responses=s.BundleVersionSerializer,
    )
    def activate(self, request: Request, bundle_name: str, version_number: int) -> Response:
        version = self._version(bundle_name, version_number)
        bundles.activate_version(tenant=request.tenant, actor=request.actor, version=version)
        return Response(s.BundleVersionSerializer(self.reload(version)).data)


class ImportErrorViewSet(ApiViewSet):
    """DAG files that failed to import: those of the bundles' active versions, or of one bundle version."""

    queryset = ParseImportError.objects.all()
    pagination_class = paginated("import_errors")
    required = {"list": "bundle.view", "retrieve": "bundle.view"}
    ordering = {"import_error_id": "pk", "timestamp": "created_at", "filename": "filename"}

    def scope_queryset(self, qs: QuerySet) -> QuerySet:
        return qs.select_related("bundle_version__bundle")

    @extend_schema(
        operation_id="get_import_errors",
        parameters=[s.ImportErrorQuery],
        responses=s.ImportErrorSerializer,
    )
    def list(self, request: Request) -> Response:
        params = self.query(s.ImportErrorQuery)
        qs = self.get_queryset()
        if "bundle_name" not in params:
            qs = qs.filter(bundle_version__bundle__active_version=F("bundle_version"))
        elif "version_number" in params:
            qs = qs.filter(
                bundle_version__bundle__name=params["bundle_name"],
                bundle_version__number=params["version_number"],
            )
        else:
            qs = qs.filter(
                bundle_version__bundle__name=params["bundle_name"],
                bundle_version__bundle__active_version=F("bundle_version"),
            )
        return self.page(self.order(qs, params.get("order_by")), s.ImportErrorSerializer)

    @extend_schema(
        operation_id="get_import_error",
        parameters=[_path("import_error_id", OpenApiTypes.INT)],
        responses=s.ImportErrorSerializer,
    )
    def retrieve(self, request: Request, import_error_id: int) -> Response:
        error = self.found(
            self.get_queryset().filter(pk=import_error_id), f"import error {import_error_id} does not exist"
        )
        return Response(s.ImportErrorSerializer(error).data)


# --- Pools ------------------------------------------------------------------------------------------------


class PoolViewSet(ApiViewSet):
    """The tenant's pools with their slot usage; create, change and delete them (default_pool stays)."""

    queryset = Pool.objects.all()
    pagination_class = paginated("pools")
    required = {
        "list": "pool.view",
        "retrieve": "pool.view",
        "create": "pool.edit",
        "partial_update": "pool.edit",
        "destroy": "pool.edit",
    }
    ordering = {"name": "name", "slots": "slots"}
    default_order = ("name",)

    def _pool(self, pool_name: str) -> Pool:
        return self.found(self.get_queryset().filter(name=pool_name), f"pool {pool_name!r} does not exist")

    def _usage(self, names: Iterable[str]) -> dict[str, dict[str, int]]:
        """pool -> state -> slots held by task instances in that state, for the given pools (one query)."""
        usage: dict[str, dict[str, int]] = {}
        rows = (
            TaskInstance.objects.for_tenant(self.request.tenant)
            .filter(
                pool__in=list(names),
                state__in=[TIState.RUNNING, TIState.QUEUED, TIState.SCHEDULED, TIState.DEFERRED],
            )
            .values_list("pool", "state")
            .annotate(slots=Sum("pool_slots"))
            .values_list("pool", "state", "slots")
        )
        for pool, state, slots in rows:
            usage.setdefault(pool, {})[state] = slots
        return usage

    def _data(self, pool: Pool) -> dict[str, Any]:
        return s.PoolSerializer(pool, context={"usage": self._usage([pool.name])}).data

    @extend_schema(
        operation_id="get_pools",
        parameters=[s.OrderedQuery],
        responses=s.PoolSerializer,
    )
    def list(self, request: Request) -> Response:
        rows = self.paginate_queryset(
            self.order(self.get_queryset(), self.query(s.OrderedQuery).get("order_by"))
        )
        usage = self._usage(pool.name for pool in rows)
        return self.get_paginated_response(s.PoolSerializer(rows, many=True, context={"usage": usage}).data)

    @extend_schema(operation_id="get_pool", parameters=[_path("pool_name")], responses=s.PoolSerializer)
    def retrieve(self, request: Request, pool_name: str) -> Response:
        return Response(self._data(self._pool(pool_name)))

    @extend_schema(operation_id="post_pool", request=s.PoolWriteSerializer, responses={201: s.PoolSerializer})
    def create(self, request: Request) -> Response:
        params = s.PoolWriteSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        missing = [name for name in ("name", "slots") if name not in data]
        if missing:
            raise Invalid(f"a new pool needs {' and '.join(missing)}")
        if self.get_queryset().filter(name=data["name"]).exists():
            raise Conflict(f"pool {data['name']!r} already exists")
        pool = services.set_pool(
            tenant=request.tenant,
            actor=request.actor,
            name=data["name"],
            slots=data["slots"],
            description=data.get("description") or "",
            include_deferred=data.get("include_deferred", False),
            request=request,
        )
        return Response(self._data(pool), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="patch_pool",
        parameters=[_path("pool_name")],
        request=s.PoolWriteSerializer,
        responses=s.PoolSerializer,
    )
    def partial_update(self, request: Request, pool_name: str) -> Response:
        pool = self._pool(pool_name)
        params = s.PoolWriteSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        if data.get("name", pool.name) != pool.name:
            raise Invalid("a pool cannot be renamed: create the new pool and delete this one")
        pool = services.set_pool(
            tenant=request.tenant,
            actor=request.actor,
            name=pool.name,
            slots=data.get("slots", pool.slots),
            description=data.get("description", pool.description) or "",
            include_deferred=data.get("include_deferred", pool.include_deferred),
            request=request,
        )
        return Response(self._data(pool))

    @extend_schema(operation_id="delete_pool", parameters=[_path("pool_name")], responses={204: None})
    def destroy(self, request: Request, pool_name: str) -> Response:
        services.delete_pool(
            tenant=request.tenant, actor=request.actor, pool=self._pool(pool_name), request=request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Assets -----------------------------------------------------------------------------------------------


class AssetViewSet(ApiViewSet):
    """The tenant's assets (read-only), with the DAGs the member may see that are scheduled on each."""

    queryset = Asset.objects.all()
    pagination_class = paginated("assets")
    required = {"list": "dag.view", "retrieve": "dag.view"}
    ordering = {"id": "pk", "uri": "uri", "name": "name", "created_at": "created_at"}

    def _consumers(self, assets: list[Asset]) -> dict[str, list[str]]:
        """asset URI -> ids of the visible active DAGs scheduled on the asset: by its URI, by an Asset.ref to
        it, or by an AssetAlias its events came through (two queries)."""
        keys = event_keys(self.request.tenant.pk, assets)
        rows = (
            self.visible_dags()
            .filter(is_active=True)
            .exclude(schedule=None)
            .order_by("dag_id")
            .values_list("dag_id", "schedule")
        )
        waiting = [(dag_id, schedule_keys(schedule)) for dag_id, schedule in rows]
        return {
            asset.uri: [dag_id for dag_id, wanted in waiting if wanted & keys[asset.pk]] for asset in assets
        }

    @extend_schema(
        operation_id="get_assets",
        parameters=[s.AssetListQuery],
        responses=s.AssetSerializer,
    )
    def list(self, request: Request) -> Response:
        params = self.query(s.AssetListQuery)
        qs = self.get_queryset()
        if params.get("uri_pattern"):
            qs = qs.filter(uri__icontains=params["uri_pattern"])
        assets = self.paginate_queryset(self.order(qs, params.get("order_by")))
        context = {"consumers": self._consumers(assets)}
        return self.get_paginated_response(s.AssetSerializer(assets, many=True, context=context).data)

    @extend_schema(
        operation_id="get_asset",
        parameters=[_path("asset_id", OpenApiTypes.INT)],
        responses=s.AssetSerializer,
    )
    def retrieve(self, request: Request, asset_id: int) -> Response:
        asset = self.found(self.get_queryset().filter(pk=asset_id), f"asset {asset_id} does not exist")
        return Response(s.AssetSerializer(asset, context={"consumers": self._consumers([asset])}).data)


class AssetEventViewSet(ApiViewSet):
    """Updates of the tenant's assets, oldest first. For members limited to granted DAGs, only events that runs
    of their granted DAGs produced (external events name no DAG, so they are left out too)."""

    queryset = AssetEvent.objects.all()
    dag_field = "source_dag_run__dag"
    pagination_class = paginated("asset_events")
    required = {"list": "dag.view"}
    ordering = {
        "id": "pk",
        "timestamp": "timestamp",
        "asset_id": "asset_id",
        "source_dag_id": "source_dag_run__dag__dag_id",
        "source_run_id": "source_dag_run__run_id",
        "source_task_id": "source_task_id",
        "source_map_index": "source_map_index",
    }
    default_order = ("timestamp", "pk")

    def scope_queryset(self, qs: QuerySet) -> QuerySet:
        return qs.select_related("asset", "source_dag_run__dag")

    @extend_schema(
        operation_id="get_asset_events",
        parameters=[s.AssetEventQuery],
        responses=s.AssetEventSerializer,
    )
    def list(self, request: Request) -> Response:
        params = self.query(s.AssetEventQuery)
        qs = self.get_queryset()
        filters = {
            "asset_id": "asset_id",
            "source_dag_id": "source_dag_run__dag__dag_id",
            "source_run_id": "source_dag_run__run_id",
            "source_task_id": "source_task_id",
            "source_map_index": "source_map_index",
        }
        for name, field in filters.items():
            if name in params:
                qs = qs.filter(**{field: params[name]})
        return self.page(self.order(qs, params.get("order_by")), s.AssetEventSerializer)
