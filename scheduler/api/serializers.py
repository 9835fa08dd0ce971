"""The REST API's shapes, as Airflow's stable REST API names them: output serializers for DAGs, versions, runs,
task instances, XComs, bundles, import errors, pools and assets; strict input serializers for every write and
every list's query string.

Everything a response shows passes through masking: run confs, XCom values, params and asset extras by key
(tradewind.secrets.masking); task logs and rendered fields were masked when they were written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from scheduler.models import NO_MAP_INDEX, BundleVersion
from scheduler.states import DagRunState, RunType, TIState
from tradewind.sdk.masking import is_sensitive_key
from tradewind.secrets.masking import MASK, mask_structure

# --- Input ------------------------------------------------------------------------------------------------


class StrictSerializer(serializers.Serializer):
    """An input serializer that refuses fields it does not know, so a misspelt option is a 400, not ignored."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                known = ", ".join(sorted(self.fields))
                raise serializers.ValidationError(
                    {name: [f"Unknown field. Known fields: {known}."] for name in unknown}
                )
        return super().to_internal_value(data)


class JSONObjectField(serializers.JSONField):
    """A JSON object (dict); anything else is refused with a clear message."""

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class DagPatchSerializer(StrictSerializer):
    """PATCH /dags/{dag_id}: only `is_paused` can be changed (as in Airflow)."""

    is_paused = serializers.BooleanField()


class TriggerSerializer(StrictSerializer):
    """POST /dags/{dag_id}/dagRuns: a manual run. `execution_date` is Airflow 2's name for `logical_date`."""

    dag_run_id = serializers.CharField(max_length=250, required=False, allow_null=True)
    logical_date = serializers.DateTimeField(required=False, allow_null=True)
    execution_date = serializers.DateTimeField(required=False, allow_null=True)
    conf = JSONObjectField(required=False, allow_null=True)
    note = serializers.CharField(required=False, allow_blank=True, allow_null=True)

    def validate(self, attrs: dict) -> dict:
        logical, execution = attrs.get("logical_date"), attrs.pop("execution_date", None)
        if logical is not None and execution is not None and logical != execution:
            raise serializers.ValidationError("logical_date and execution_date differ: send only one.")
        attrs["logical_date"] = logical or execution
        return attrs


class DagRunPatchSerializer(StrictSerializer):
    """PATCH .../dagRuns/{dag_run_id}: mark the run (Airflow's allowed states)."""

    state = serializers.ChoiceField(
        choices=[DagRunState.QUEUED, DagRunState.SUCCESS, DagRunState.FAILED],
    )


class ClearRunSerializer(StrictSerializer):
    """POST .../dagRuns/{dag_run_id}/clear; a dry run (Airflow's default) only lists what would be cleared."""

    dry_run = serializers.BooleanField(default=True)
    only_failed = serializers.BooleanField(default=False)


class ClearTaskInstancesSerializer(StrictSerializer):
    """POST /dags/{dag_id}/clearTaskInstances, for one run; Airflow's defaults (dry run, only failed)."""

    dag_run_id = serializers.CharField(max_length=250)
    task_ids = serializers.ListField(
        child=serializers.CharField(max_length=250), required=False, allow_null=True
    )
    map_indexes = serializers.ListField(
        child=serializers.IntegerField(min_value=-1), required=False, allow_null=True
    )
    include_upstream = serializers.BooleanField(default=False)
    include_downstream = serializers.BooleanField(default=False)
    only_failed = serializers.BooleanField(default=True)
    dry_run = serializers.BooleanField(default=True)


class TaskInstancePatchSerializer(StrictSerializer):
    """PATCH .../taskInstances/{task_id}[/{map_index}]: mark it success, failed or skipped."""

    new_state = serializers.ChoiceField(choices=[TIState.SUCCESS, TIState.FAILED, TIState.SKIPPED])
    include_upstream = serializers.BooleanField(default=False)
    include_downstream = serializers.BooleanField(default=False)


class PoolWriteSerializer(StrictSerializer):
    """POST /pools (name required) and PATCH /pools/{name} (omitted fields keep their value)."""

    name = serializers.CharField(max_length=250, required=False)
    slots = serializers.IntegerField(min_value=-1, required=False)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    include_deferred = serializers.BooleanField(required=False)


class UploadSerializer(StrictSerializer):
    """POST /bundles/{bundle_name}/versions as multipart: the archive in `file`, options beside it."""

    file = serializers.FileField(required=False)
    validate_only = serializers.BooleanField(default=False)
    pause_new_dags = serializers.BooleanField(default=False)


class UploadOptionsSerializer(StrictSerializer):
    """Options of a raw-body upload, in the query string."""

    validate_only = serializers.BooleanField(default=False)
    pause_new_dags = serializers.BooleanField(default=False)


class RollbackSerializer(StrictSerializer):
    """POST /bundles/{bundle_name}/rollback: the version to make active again."""

    version_number = serializers.IntegerField(min_value=1)


# --- Query strings ----------------------------------------------------------------------------------------

TI_STATES = [state.value for state in TIState]


class OrderedQuery(serializers.Serializer):
    """Airflow's `order_by`: a field name, "-" first to reverse."""

    order_by = serializers.CharField(required=False)


class DagListQuery(OrderedQuery):
    """GET /dags: any of `tags`, paused or not, active only (default), dag_id containing a pattern."""

    tags = serializers.ListField(child=serializers.CharField(), required=False)
    paused = serializers.BooleanField(required=False, allow_null=True, default=None)
    only_active = serializers.BooleanField(default=True)
    dag_id_pattern = serializers.CharField(required=False)


class DagRunListQuery(OrderedQuery):
    """GET .../dagRuns: states, run types and date ranges (`execution_date_*` is Airflow 2's spelling)."""

    state = serializers.ListField(child=serializers.ChoiceField(choices=DagRunState.values), required=False)
    run_type = serializers.ListField(child=serializers.ChoiceField(choices=RunType.values), required=False)
    logical_date_gte = serializers.DateTimeField(required=False)
    logical_date_lte = serializers.DateTimeField(required=False)
    execution_date_gte = serializers.DateTimeField(required=False)
    execution_date_lte = serializers.DateTimeField(required=False)
    start_date_gte = serializers.DateTimeField(required=False)
    start_date_lte = serializers.DateTimeField(required=False)
    end_date_gte = serializers.DateTimeField(required=False)
    end_date_lte = serializers.DateTimeField(required=False)
    run_after_gte = serializers.DateTimeField(required=False)
    run_after_lte = serializers.DateTimeField(required=False)


class TaskInstanceListQuery(OrderedQuery):
    """GET .../taskInstances: states ("none" for no state), task, map index, pools and queues."""

    state = serializers.ListField(child=serializers.ChoiceField(choices=TI_STATES), required=False)
    task_id = serializers.CharField(required=False)
    map_index = serializers.IntegerField(min_value=-1, required=False)
    pool = serializers.ListField(child=serializers.CharField(), required=False)
    queue = serializers.ListField(child=serializers.CharField(), required=False)


class MapIndexQuery(serializers.Serializer):
    """`map_index` of the task instance a URL without one means (-1: not mapped)."""

    map_index = serializers.IntegerField(min_value=-1, default=NO_MAP_INDEX)


class LogQuery(MapIndexQuery):
    """GET .../logs/{try_number}: `offset` bytes in (0), at most `limit` bytes (LOG_LIMIT_DEFAULT)."""

    offset = serializers.IntegerField(min_value=0, default=0)
    limit = serializers.IntegerField(min_value=1, required=False)


class XComListQuery(OrderedQuery):
    """GET .../xcomEntries: one map index only, if given."""

    map_index = serializers.IntegerField(min_value=-1, required=False)


class ImportErrorQuery(OrderedQuery):
    """GET /importErrors: the errors of the bundles' active versions, or of one bundle version."""

    bundle_name = serializers.CharField(required=False)
    version_number = serializers.IntegerField(min_value=1, required=False)

    def validate(self, attrs: dict) -> dict:
        if "version_number" in attrs and "bundle_name" not in attrs:
            raise serializers.ValidationError({"version_number": ["Give bundle_name with version_number."]})
        return attrs


class AssetListQuery(OrderedQuery):
    """GET /assets: URIs containing a pattern."""

    uri_pattern = serializers.CharField(required=False)


class AssetEventQuery(OrderedQuery):
    """GET /assets/events filters (Airflow's)."""

    asset_id = serializers.IntegerField(required=False)
    source_dag_id = serializers.CharField(required=False)
    source_task_id = serializers.CharField(required=False)
    source_run_id = serializers.CharField(required=False)
    source_map_index = serializers.IntegerField(required=False)


# --- Output -----------------------------------------------------------------------------------------------


def mask_value(key: str, value: Any) -> Any:
    """A value stored under `key`, as responses show it: `***` for a sensitive key, else key-masked inside."""
    if is_sensitive_key(key) and value not in (None, ""):
        return MASK
    return mask_structure(value)


class TagSerializer(serializers.Serializer):
    """A DAG tag, as Airflow lists them."""

    name = serializers.CharField()


class DagSerializer(serializers.Serializer):
    """A DAG as Airflow's DAG schema lists it; `has_import_errors` is annotated by the view's queryset."""

    dag_id = serializers.CharField()
    dag_display_name = serializers.CharField(source="dag_id")
    is_paused = serializers.BooleanField()
    is_active = serializers.BooleanField()
    last_parsed_time = serializers.DateTimeField(source="last_parsed_at", allow_null=True)
    fileloc = serializers.CharField()
    bundle_name = serializers.CharField(source="bundle.name")
    owners = serializers.SerializerMethodField()
    description = serializers.CharField(allow_null=True)
    schedule = serializers.JSONField(allow_null=True)
    timetable_summary = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    max_active_tasks = serializers.IntegerField()
    max_active_runs = serializers.IntegerField()
    has_import_errors = serializers.BooleanField(default=False)
    next_dagrun = serializers.DateTimeField(source="next_dagrun_data_interval_start", allow_null=True)
    next_dagrun_data_interval_start = serializers.DateTimeField(allow_null=True)
    next_dagrun_data_interval_end = serializers.DateTimeField(allow_null=True)
    next_dagrun_create_after = serializers.DateTimeField(allow_null=True)

    def get_owners(self, dag: Any) -> list[str]:
        return [owner.strip() for owner in dag.owners.split(",") if owner.strip()]

    def get_timetable_summary(self, dag: Any) -> str | None:
        return dag.schedule.get("summary") if isinstance(dag.schedule, dict) else None

    @extend_schema_field(TagSerializer(many=True))
    def get_tags(self, dag: Any) -> list[dict[str, str]]:
        return [{"name": tag} for tag in dag.tags or []]


class TaskSerializer(serializers.Serializer):
    """A task of the DAG's active version, from its serialization (durations in seconds); a key an older
    serialization lacks reads as null."""

    task_id = serializers.CharField()
    task_display_name = serializers.CharField(allow_null=True)
    class_ref = serializers.SerializerMethodField()
    operator_name = serializers.CharField(allow_null=True)
    owner = serializers.CharField(allow_null=True)
    start_date = serializers.DateTimeField(allow_null=True)
    end_date = serializers.DateTimeField(allow_null=True)
    trigger_rule = serializers.CharField(allow_null=True)
    depends_on_past = serializers.BooleanField(allow_null=True)
    wait_for_downstream = serializers.BooleanField(allow_null=True)
    is_mapped = serializers.BooleanField(allow_null=True)
    is_setup = serializers.BooleanField(allow_null=True)
    is_teardown = serializers.BooleanField(allow_null=True)
    deferrable = serializers.BooleanField(allow_null=True)
    retries = serializers.IntegerField(allow_null=True)
    retry_delay = serializers.FloatField(allow_null=True)
    retry_exponential_backoff = serializers.BooleanField(allow_null=True)
    execution_timeout = serializers.FloatField(allow_null=True)
    queue = serializers.CharField(allow_null=True)
    pool = serializers.CharField(allow_null=True)
    pool_slots = serializers.IntegerField(allow_null=True)
    priority_weight = serializers.IntegerField(allow_null=True)
    weight_rule = serializers.CharField(allow_null=True)
    ui_color = serializers.CharField(allow_null=True)
    ui_fgcolor = serializers.CharField(allow_null=True)
    template_fields = serializers.ListField(child=serializers.CharField(), allow_null=True)
    group_id = serializers.CharField(allow_null=True)
    upstream_task_ids = serializers.ListField(child=serializers.CharField(), allow_null=True)
    downstream_task_ids = serializers.ListField(child=serializers.CharField(), allow_null=True)
    doc_md = serializers.CharField(allow_null=True)

    def get_class_ref(self, task: Mapping[str, Any]) -> dict[str, Any]:
        return {"module_path": task.get("operator_module"), "class_name": task.get("operator")}


def _of_version(key: str) -> str:
    return f"active_version.serialized.{key}"


class DagDetailSerializer(DagSerializer):
    """A DAG with what its active version's serialization says: tasks, task groups, schedule details, params,
    docs. The view selects `active_version`; without one these fields are null."""

    dag_version = serializers.IntegerField(source="active_version.number", allow_null=True)
    timezone = serializers.CharField(source=_of_version("timezone"), allow_null=True)
    catchup = serializers.BooleanField(source=_of_version("catchup"), allow_null=True)
    start_date = serializers.DateTimeField(source=_of_version("start_date"), allow_null=True)
    end_date = serializers.DateTimeField(source=_of_version("end_date"), allow_null=True)
    dag_run_timeout = serializers.FloatField(source=_of_version("dagrun_timeout"), allow_null=True)
    doc_md = serializers.CharField(source=_of_version("doc_md"), allow_null=True)
    default_view = serializers.CharField(source=_of_version("default_view"), allow_null=True)
    orientation = serializers.CharField(source=_of_version("orientation"), allow_null=True)
    is_paused_upon_creation = serializers.BooleanField(
        source=_of_version("is_paused_upon_creation"), allow_null=True
    )
    render_template_as_native_obj = serializers.BooleanField(
        source=_of_version("render_template_as_native_obj"), allow_null=True
    )
    template_search_path = serializers.JSONField(source=_of_version("template_searchpath"), allow_null=True)
    owner_links = serializers.JSONField(source=_of_version("owner_links"), allow_null=True)
    params = serializers.SerializerMethodField()
    tasks = TaskSerializer(many=True, source=_of_version("tasks"), allow_null=True)
    task_groups = serializers.JSONField(source=_of_version("task_groups"), allow_null=True)
    edges = serializers.JSONField(source=_of_version("edges"), allow_null=True)

    def get_params(self, dag: Any) -> dict[str, dict[str, Any]]:
        """name -> {value, has_default, description, schema}; a sensitive-looking param's value masked."""
        serialized = dag.active_version.serialized if dag.active_version is not None else {}
        return {
            name: {
                "value": mask_value(name, param.get("default")),
                "has_default": param.get("has_default", True),
                "description": param.get("description"),
                "schema": param.get("schema") or {},
            }
            for name, param in (serialized.get("params") or {}).items()
        }


class DagVersionSerializer(serializers.Serializer):
    """One stored serialization of a DAG (Airflow 3's DagVersion)."""

    id = serializers.IntegerField()
    version_number = serializers.IntegerField(source="number")
    dag_id = serializers.CharField(source="dag.dag_id")
    bundle_name = serializers.CharField(source="bundle_version.bundle.name")
    bundle_version = serializers.IntegerField(source="bundle_version.number")
    hash = serializers.CharField()
    created_at = serializers.DateTimeField()
    is_active = serializers.SerializerMethodField()

    def get_is_active(self, version: Any) -> bool:
        return version.dag.active_version_id == version.pk


class DagVersionDetailSerializer(DagVersionSerializer):
    """A DAG version with its serialized JSON (values under sensitive keys masked)."""

    serialized = serializers.SerializerMethodField()

    def get_serialized(self, version: Any) -> dict[str, Any]:
        return mask_structure(version.serialized)


class DagRunSerializer(serializers.Serializer):
    """A DAG run as Airflow's DAGRun schema shows it (conf masked)."""

    dag_run_id = serializers.CharField(source="run_id")
    dag_id = serializers.CharField(source="dag.dag_id")
    logical_date = serializers.DateTimeField(allow_null=True)
    execution_date = serializers.DateTimeField(source="logical_date", allow_null=True)
    queued_at = serializers.DateTimeField(allow_null=True)
    start_date = serializers.DateTimeField(allow_null=True)
    end_date = serializers.DateTimeField(allow_null=True)
    data_interval_start = serializers.DateTimeField(allow_null=True)
    data_interval_end = serializers.DateTimeField(allow_null=True)
    run_after = serializers.DateTimeField()
    run_type = serializers.CharField()
    state = serializers.CharField()
    external_trigger = serializers.BooleanField()
    triggered_by = serializers.CharField(source="triggered_by.username", allow_null=True, default=None)
    conf = serializers.SerializerMethodField()
    note = serializers.CharField(allow_blank=True)
    dag_version = serializers.IntegerField(source="dag_version.number")
    failure_reason = serializers.CharField(allow_blank=True)

    def get_conf(self, run: Any) -> dict[str, Any]:
        return mask_structure(run.conf or {})


def ti_state(state: str) -> str | None:
    """A task instance state as Airflow's API shows it: "no state yet" is null."""
    return None if state == TIState.NONE else state


class TaskInstanceSerializer(serializers.Serializer):
    """A task instance as Airflow's TaskInstance schema shows it."""

    task_id = serializers.CharField()
    task_display_name = serializers.CharField(source="task_id")
    dag_id = serializers.CharField(source="dag_run.dag.dag_id")
    dag_run_id = serializers.CharField(source="dag_run.run_id")
    logical_date = serializers.DateTimeField(source="dag_run.logical_date", allow_null=True)
    execution_date = serializers.DateTimeField(source="dag_run.logical_date", allow_null=True)
    map_index = serializers.IntegerField()
    rendered_map_index = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField()
    try_number = serializers.IntegerField()
    max_tries = serializers.IntegerField()
    start_date = serializers.DateTimeField(allow_null=True)
    end_date = serializers.DateTimeField(allow_null=True)
    duration = serializers.FloatField(allow_null=True)
    hostname = serializers.CharField(allow_blank=True)
    pid = serializers.IntegerField(allow_null=True)
    pool = serializers.CharField()
    pool_slots = serializers.IntegerField()
    queue = serializers.CharField()
    priority_weight = serializers.IntegerField()
    operator = serializers.CharField(allow_blank=True)
    queued_when = serializers.DateTimeField(source="queued_at", allow_null=True)
    next_retry_at = serializers.DateTimeField(allow_null=True)
    note = serializers.CharField(allow_blank=True)

    def get_rendered_map_index(self, ti: Any) -> str | None:
        if ti.map_index_label:
            return ti.map_index_label
        return None if ti.map_index == NO_MAP_INDEX else str(ti.map_index)

    def get_state(self, ti: Any) -> str | None:
        return ti_state(ti.state)


class TaskInstanceDetailSerializer(TaskInstanceSerializer):
    """A task instance with its rendered fields and last error (both masked when they were stored)."""

    rendered_fields = serializers.SerializerMethodField()
    error = serializers.CharField(allow_blank=True)

    def get_rendered_fields(self, ti: Any) -> Any:
        return mask_structure(ti.rendered_fields or {})


class TaskInstanceTrySerializer(serializers.Serializer):
    """One try of the task instance `context["ti"]`: an ended try (its history row) or the current one (the
    task instance itself)."""

    task_id = serializers.SerializerMethodField()
    dag_id = serializers.SerializerMethodField()
    dag_run_id = serializers.SerializerMethodField()
    map_index = serializers.SerializerMethodField()
    try_number = serializers.IntegerField()
    state = serializers.SerializerMethodField()
    start_date = serializers.DateTimeField(allow_null=True)
    end_date = serializers.DateTimeField(allow_null=True)
    duration = serializers.FloatField(allow_null=True)
    hostname = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)

    def get_task_id(self, attempt: Any) -> str:
        return self.context["ti"].task_id

    def get_dag_id(self, attempt: Any) -> str:
        return self.context["ti"].dag_run.dag.dag_id

    def get_dag_run_id(self, attempt: Any) -> str:
        return self.context["ti"].dag_run.run_id

    def get_map_index(self, attempt: Any) -> int:
        return self.context["ti"].map_index

    def get_state(self, attempt: Any) -> str | None:
        return ti_state(attempt.state)


class LogChunkSerializer(serializers.Serializer):
    """A piece of a try's log: call again with `offset=next_offset` until `finished`."""

    content = serializers.CharField(allow_blank=True)
    next_offset = serializers.IntegerField()
    finished = serializers.BooleanField()


class XComSerializer(serializers.Serializer):
    """An XCom entry; the value of a sensitive-looking key is `***`, sensitive keys inside it too."""

    key = serializers.CharField()
    timestamp = serializers.DateTimeField()
    logical_date = serializers.DateTimeField(source="dag_run.logical_date", allow_null=True)
    execution_date = serializers.DateTimeField(source="dag_run.logical_date", allow_null=True)
    map_index = serializers.IntegerField()
    task_id = serializers.CharField()
    dag_id = serializers.CharField(source="dag_run.dag.dag_id")
    dag_run_id = serializers.CharField(source="dag_run.run_id")
    value = serializers.SerializerMethodField()

    def get_value(self, xcom: Any) -> Any:
        return mask_value(xcom.key, xcom.value)


class BundleSerializer(serializers.Serializer):
    """A DAG repository and its active version."""

    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    active_version = serializers.IntegerField(source="active_version.number", allow_null=True, default=None)
    created_at = serializers.DateTimeField()


class BundleVersionSerializer(serializers.Serializer):
    """One uploaded version of a DAG repository."""

    bundle_name = serializers.CharField(source="bundle.name")
    version_number = serializers.IntegerField(source="number")
    state = serializers.ChoiceField(choices=BundleVersion.State.choices)
    content_hash = serializers.CharField()
    size_bytes = serializers.IntegerField()
    file_count = serializers.IntegerField()
    validate_only = serializers.BooleanField()
    import_error_count = serializers.IntegerField()
    dags = serializers.SerializerMethodField()
    uploaded_by = serializers.CharField(source="uploaded_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)

    def get_dags(self, version: Any) -> list[str]:
        return sorted(version.dags or {})


class UploadImportErrorSerializer(serializers.Serializer):
    """A file of an upload that failed to import."""

    filename = serializers.CharField()
    stack_trace = serializers.CharField()


class UploadResultSerializer(serializers.Serializer):
    """What an upload did: the version, whether it is now active, its DAGs and its files' import errors."""

    version = BundleVersionSerializer()
    activated = serializers.BooleanField()
    dags = serializers.ListField(child=serializers.CharField())
    import_errors = UploadImportErrorSerializer(many=True)


class ImportErrorSerializer(serializers.Serializer):
    """A DAG file that failed to import (Airflow's ImportError schema), with its bundle version."""

    import_error_id = serializers.IntegerField(source="pk")
    timestamp = serializers.DateTimeField(source="created_at")
    filename = serializers.CharField()
    stack_trace = serializers.CharField(source="message")
    bundle_name = serializers.CharField(source="bundle_version.bundle.name")
    bundle_version = serializers.IntegerField(source="bundle_version.number")


class PoolSerializer(serializers.Serializer):
    """A pool and how its slots are used now (`context["usage"]`: pool -> state -> slots); -1 is unlimited."""

    name = serializers.CharField()
    slots = serializers.IntegerField()
    occupied_slots = serializers.SerializerMethodField()
    running_slots = serializers.SerializerMethodField()
    queued_slots = serializers.SerializerMethodField()
    scheduled_slots = serializers.SerializerMethodField()
    deferred_slots = serializers.SerializerMethodField()
    open_slots = serializers.SerializerMethodField()
    description = serializers.CharField(allow_blank=True)
    include_deferred = serializers.BooleanField()

    def _used(self, pool: Any, state: str) -> int:
        return int(self.context.get("usage", {}).get(pool.name, {}).get(state) or 0)

    def get_running_slots(self, pool: Any) -> int:
        return self._used(pool, TIState.RUNNING)

    def get_queued_slots(self, pool: Any) -> int:
        return self._used(pool, TIState.QUEUED)

    def get_scheduled_slots(self, pool: Any) -> int:
        return self._used(pool, TIState.SCHEDULED)

    def get_deferred_slots(self, pool: Any) -> int:
        return self._used(pool, TIState.DEFERRED)

    def _taken(self, pool: Any) -> dict[str, int]:
        return {
            "active": self.get_running_slots(pool) + self.get_queued_slots(pool),
            "deferred": self.get_deferred_slots(pool),
        }

    def get_occupied_slots(self, pool: Any) -> int:
        return pool.occupied_slots(**self._taken(pool))

    def get_open_slots(self, pool: Any) -> int:
        return -1 if pool.slots < 0 else int(pool.open_slots(**self._taken(pool)))


class ConsumingDagSerializer(serializers.Serializer):
    """A DAG scheduled on an asset."""

    dag_id = serializers.CharField()


class AssetSerializer(serializers.Serializer):
    """An asset and the DAGs (that the member may see) scheduled on it (`context["consumers"]`)."""

    id = serializers.IntegerField()
    uri = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    group = serializers.CharField(allow_blank=True)
    extra = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    consuming_dags = serializers.SerializerMethodField()

    def get_extra(self, asset: Any) -> dict[str, Any]:
        return mask_structure(asset.extra or {})

    @extend_schema_field(ConsumingDagSerializer(many=True))
    def get_consuming_dags(self, asset: Any) -> list[dict[str, str]]:
        return [{"dag_id": dag_id} for dag_id in self.context.get("consumers", {}).get(asset.uri, [])]


class AssetEventSerializer(serializers.Serializer):
    """An update of an asset, by a task of a run or from outside (no source)."""

    id = serializers.IntegerField()
    asset_id = serializers.IntegerField()
    uri = serializers.CharField(source="asset.uri")
    extra = serializers.SerializerMethodField()
    source_dag_id = serializers.CharField(source="source_dag_run.dag.dag_id", allow_null=True, default=None)
    source_run_id = serializers.CharField(source="source_dag_run.run_id", allow_null=True, default=None)
    source_task_id = serializers.CharField(allow_blank=True)
    source_map_index = serializers.IntegerField()
    timestamp = serializers.DateTimeField()

    def get_extra(self, event: Any) -> dict[str, Any]:
        return mask_structure(event.extra or {})
