"""DAG repositories and their versions, DAGs and DAG versions, runs, task instances, XCom, assets, pools.

Every row belongs to one tenant (TenantOwned). A run is pinned to the DAG version it started with, and a
DAG version to the bundle version whose files it runs.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from scheduler.states import DagRunState, RunType, TIState
from tenants.models import TenantOwned

NO_MAP_INDEX = -1
DEFAULT_POOL = "default_pool"  # every tenant has it; it cannot be deleted


class DocumentField(models.JSONField):
    """A JSONField for large documents (serialized DAGs). On PostgreSQL, Django inserts several rows at once
    as arrays of values (UNNEST), which psycopg writes as array literals, escaping every quote of every
    document in Python: seconds for a repository's DAGs. A placeholder of its own makes Django send such a
    column's values as plain parameters instead, each written by the JSON dumper."""

    def get_placeholder(self, value, compiler, connection) -> str:
        return "%s"


class Bundle(TenantOwned):
    """A DAG repository: a named series of uploaded versions, one of which is active."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    active_version = models.ForeignKey(
        "scheduler.BundleVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="bundle_unique_name")]

    def __str__(self) -> str:
        return self.name


class BundleVersion(TenantOwned):
    """One immutable upload of a DAG repository, stored content-addressed under the bundle root."""

    class State(models.TextChoices):
        PARSING = "parsing"
        READY = "ready"  # parsed; may be activated
        ACTIVE = "active"
        INACTIVE = "inactive"  # was active, or validate-only

    bundle = models.ForeignKey(Bundle, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)  # sha256 of the canonical file listing and contents
    size_bytes = models.PositiveBigIntegerField()
    file_count = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PARSING)
    validate_only = models.BooleanField(default=False)
    import_error_count = models.PositiveIntegerField(default=0)
    # The DAGs this version defines: dag_id -> {"version": DagVersion id, "file": path in the bundle,
    # "carried": True when its file failed to import and the previous active version's DAG version is kept}.
    dags = models.JSONField(default=dict, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["bundle", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["bundle", "number"], name="bundleversion_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.bundle.name} v{self.number}"


class ParseImportError(TenantOwned):
    """A DAG file of a bundle version that failed to parse, with the message shown to the tenant."""

    bundle_version = models.ForeignKey(BundleVersion, on_delete=models.CASCADE, related_name="import_errors")
    filename = models.CharField(max_length=1000)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["filename"]


class ParsedFile(TenantOwned):
    """Parse cache: the sandbox's result for one file content (and the bundle's support files)."""

    cache_key = models.CharField(max_length=64)
    result = DocumentField()  # {"dags": [...serialized...], "error": str | None}
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "cache_key"], name="parsedfile_unique_key")]


class Dag(TenantOwned):
    """A DAG of a tenant, as its latest parse describes it; its versions keep every serialization."""

    dag_id = models.CharField(max_length=250)
    bundle = models.ForeignKey(Bundle, on_delete=models.CASCADE, related_name="dags")
    fileloc = models.CharField(max_length=1000)  # path relative to the bundle root
    active_version = models.ForeignKey(
        "scheduler.DagVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_active = models.BooleanField(default=True)  # present in the bundle's active version
    is_paused = models.BooleanField(default=False)
    description = models.TextField(blank=True)
    owners = models.CharField(max_length=500, blank=True)
    tags = models.JSONField(default=list, blank=True)
    schedule = models.JSONField(null=True, blank=True)  # the serialized schedule, for listing
    max_active_runs = models.PositiveIntegerField(default=16)
    max_active_tasks = models.PositiveIntegerField(default=16)
    next_dagrun_create_after = models.DateTimeField(null=True, blank=True)
    next_dagrun_data_interval_start = models.DateTimeField(null=True, blank=True)
    next_dagrun_data_interval_end = models.DateTimeField(null=True, blank=True)
    last_parsed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dag_id"]
        permissions = [("trigger_dag", "Can trigger runs of the DAG")]
        constraints = [models.UniqueConstraint(fields=["tenant", "dag_id"], name="dag_unique_dag_id")]

    def __str__(self) -> str:
        return self.dag_id


class DagUserObjectPermission(UserObjectPermissionBase):
    """Per-DAG grants to users (django-guardian direct foreign key table)."""

    content_object = models.ForeignKey(Dag, on_delete=models.CASCADE)


class DagGroupObjectPermission(GroupObjectPermissionBase):
    """Per-DAG grants to groups (django-guardian direct foreign key table)."""

    content_object = models.ForeignKey(Dag, on_delete=models.CASCADE)


class DagVersion(TenantOwned):
    """One serialization of a DAG; stored only when the serialization changes."""

    dag = models.ForeignKey(Dag, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    hash = models.CharField(max_length=64)
    serialized = DocumentField()
    bundle_version = models.ForeignKey(BundleVersion, on_delete=models.RESTRICT, related_name="dag_versions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dag", "-number"]
        constraints = [models.UniqueConstraint(fields=["dag", "number"], name="dagversion_unique_number")]

    def __str__(self) -> str:
        return f"{self.dag.dag_id} v{self.number}"


class Backfill(TenantOwned):
    """A scheduler-managed backfill of one DAG over a date range (Airflow 3's backfill).

    `planned` holds the runs it considers, in the order it handles them; the scheduler works through them
    over time (`scheduler.services.create_backfill_runs`), never with more than `max_active_runs` of its
    runs queued or running, skipping or reprocessing dates that already have a run as `reprocess_behavior`
    says. A DAG has at most one backfill that is not completed.
    """

    class Reprocess(models.TextChoices):
        NONE = "none"  # a date with a run is skipped, whatever its state
        FAILED = "failed"  # a date whose run failed is run again
        COMPLETED = "completed"  # a date whose run finished (succeeded or failed) is run again

    dag = models.ForeignKey(Dag, on_delete=models.CASCADE, related_name="backfills")
    from_date = models.DateTimeField()
    to_date = models.DateTimeField()
    reverse = models.BooleanField(default=False)  # latest dates first
    max_active_runs = models.PositiveIntegerField(default=10)
    reprocess_behavior = models.CharField(max_length=16, choices=Reprocess.choices, default=Reprocess.NONE)
    dag_run_conf = models.JSONField(default=dict, blank=True)
    is_paused = models.BooleanField(default=False)  # no new runs; its runs already created go on
    # [{"logical_date", "start", "end"}] as ISO strings: the data intervals to run, in order.
    planned = models.JSONField(default=list, blank=True)
    next_index = models.PositiveIntegerField(default=0)  # planned[next_index:] are still to be handled
    skipped = models.JSONField(default=list, blank=True)  # [{"logical_date", "reason"}]: dates not run
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Set once every date is handled and its runs have finished, or when the backfill is cancelled.
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["dag"], condition=Q(completed_at__isnull=True), name="backfill_one_active_per_dag"
            )
        ]

    def __str__(self) -> str:
        return f"backfill {self.pk} of {self.dag.dag_id}"


class DagRun(TenantOwned):
    """One run of a DAG, pinned to the DAG version it started with."""

    dag = models.ForeignKey(Dag, on_delete=models.CASCADE, related_name="runs")
    dag_version = models.ForeignKey(DagVersion, on_delete=models.RESTRICT, related_name="runs")
    run_id = models.CharField(max_length=250)
    run_type = models.CharField(max_length=16, choices=RunType.choices)
    state = models.CharField(max_length=16, choices=DagRunState.choices, default=DagRunState.QUEUED)
    logical_date = models.DateTimeField(null=True, blank=True)
    data_interval_start = models.DateTimeField(null=True, blank=True)
    data_interval_end = models.DateTimeField(null=True, blank=True)
    run_after = models.DateTimeField()
    conf = models.JSONField(default=dict, blank=True)
    external_trigger = models.BooleanField(default=False)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    queued_at = models.DateTimeField(null=True, blank=True)
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)  # why the scheduler failed it (deadlock, timeout)
    note = models.TextField(blank=True)
    backfill = models.ForeignKey(
        Backfill, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )  # the backfill that created (or reprocessed) the run
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-run_after", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["dag", "run_id"], name="dagrun_unique_run_id"),
            models.UniqueConstraint(
                fields=["dag", "logical_date"],
                condition=Q(logical_date__isnull=False),
                name="dagrun_unique_logical",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "state"], name="dagrun_tenant_state")]

    def __str__(self) -> str:
        return f"{self.dag.dag_id} {self.run_id}"


class TaskInstance(TenantOwned):
    """One task × map index of one run; `try_number` counts the tries started so far."""

    # No index of their own: ti_tenant_state and ti_unique_task_map_index lead with them, and every state
    # change of a task instance (three per try) writes an entry in each of the table's indexes.
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    dag_run = models.ForeignKey(
        DagRun, on_delete=models.CASCADE, related_name="task_instances", db_index=False
    )
    task_id = models.CharField(max_length=250)
    map_index = models.IntegerField(default=NO_MAP_INDEX)
    state = models.CharField(max_length=20, choices=TIState.choices, default=TIState.NONE)
    try_number = models.PositiveIntegerField(default=0)
    max_tries = models.PositiveIntegerField(default=0)  # retries of the task
    operator = models.CharField(max_length=200, blank=True)
    pool = models.CharField(max_length=250, default="default_pool")
    pool_slots = models.PositiveIntegerField(default=1)
    queue = models.CharField(max_length=250, default="default")
    priority_weight = models.IntegerField(default=1)
    queued_at = models.DateTimeField(null=True, blank=True)
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)  # seconds
    next_retry_at = models.DateTimeField(null=True, blank=True)  # up_for_retry and up_for_reschedule
    first_try_start_date = models.DateTimeField(null=True, blank=True)  # sensor timeouts span reschedules
    hostname = models.CharField(max_length=250, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    trigger = models.JSONField(null=True, blank=True)  # the serialized trigger of a deferred task
    trigger_timeout_at = models.DateTimeField(null=True, blank=True)
    # The triggerer running a deferred task's trigger, until its claim expires unless renewed.
    trigger_claimed_by = models.CharField(max_length=200, blank=True)
    trigger_claim_expires_at = models.DateTimeField(null=True, blank=True)
    next_method = models.CharField(max_length=250, blank=True)
    next_kwargs = models.JSONField(null=True, blank=True)
    rendered_fields = models.JSONField(null=True, blank=True)  # masked
    map_index_label = models.CharField(max_length=250, blank=True)
    error = models.TextField(blank=True)  # the last try's error, masked
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["dag_run", "task_id", "map_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["dag_run", "task_id", "map_index"], name="ti_unique_task_map_index"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "state"], name="ti_tenant_state"),
            models.Index(
                fields=["trigger_claimed_by"], condition=~Q(trigger_claimed_by=""), name="ti_trigger_claim"
            ),
        ]

    def __str__(self) -> str:
        suffix = f"[{self.map_index}]" if self.map_index != NO_MAP_INDEX else ""
        return f"{self.task_id}{suffix} of {self.dag_run_id}"


class TaskInstanceHistory(TenantOwned):
    """A finished try of a task instance, kept when the instance is retried or cleared."""

    task_instance = models.ForeignKey(TaskInstance, on_delete=models.CASCADE, related_name="history")
    try_number = models.PositiveIntegerField()
    state = models.CharField(max_length=20, choices=TIState.choices)
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    hostname = models.CharField(max_length=250, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["task_instance", "try_number"]
        constraints = [
            models.UniqueConstraint(fields=["task_instance", "try_number"], name="tihistory_unique_try")
        ]


class XCom(TenantOwned):
    """A value a task instance pushed, stored as JSON."""

    dag_run = models.ForeignKey(DagRun, on_delete=models.CASCADE, related_name="xcoms")
    task_id = models.CharField(max_length=250)
    map_index = models.IntegerField(default=NO_MAP_INDEX)
    key = models.CharField(max_length=512)
    value = models.JSONField(null=True)
    size_bytes = models.PositiveIntegerField(default=0)
    timestamp = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["dag_run", "task_id", "map_index", "key"]
        constraints = [
            models.UniqueConstraint(fields=["dag_run", "task_id", "map_index", "key"], name="xcom_unique_key")
        ]


class Pool(TenantOwned):
    """A limit on how many task slots run at once; `default_pool` exists in every tenant."""

    name = models.CharField(max_length=250)
    slots = models.IntegerField(default=128)  # -1: unlimited
    description = models.TextField(blank=True)
    include_deferred = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="pool_unique_name")]

    def __str__(self) -> str:
        return self.name

    def occupied_slots(self, *, active: int, deferred: int) -> int:
        """Slots taken, given those of the pool's queued and running task instances (`active`) and of its
        deferred ones, which count only where the pool says so."""
        return active + (deferred if self.include_deferred else 0)

    def open_slots(self, *, active: int, deferred: int) -> float:
        """Slots left (infinite for an unlimited pool; negative when the pool was shrunk below its use)."""
        if self.slots < 0:
            return float("inf")
        return self.slots - self.occupied_slots(active=active, deferred=deferred)


class Asset(TenantOwned):
    """An asset (Airflow 2: dataset) that tasks produce and DAGs may be scheduled on."""

    uri = models.CharField(max_length=1500)
    name = models.CharField(max_length=1500, blank=True)
    group = models.CharField(max_length=1500, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["uri"]
        constraints = [models.UniqueConstraint(fields=["tenant", "uri"], name="asset_unique_uri")]

    def __str__(self) -> str:
        return self.uri


class AssetEvent(TenantOwned):
    """A task's update of an asset (or an external one), with the extras the task attached."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="events")
    source_dag_run = models.ForeignKey(DagRun, null=True, blank=True, on_delete=models.SET_NULL)
    source_task_id = models.CharField(max_length=250, blank=True)
    source_map_index = models.IntegerField(default=NO_MAP_INDEX)
    source_alias = models.CharField(max_length=1500, blank=True)  # the AssetAlias the task added it through
    extra = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-timestamp", "-pk"]

    def for_task(self) -> dict[str, Any]:
        """The event as a task's context shows it (triggering_asset_events, inlet_events); needs `asset`
        and `source_dag_run__dag` loaded."""
        run = self.source_dag_run
        return {
            "id": self.pk,
            "uri": self.asset.uri,
            "asset": {
                "uri": self.asset.uri,
                "name": self.asset.name or self.asset.uri,
                "group": self.asset.group,
            },
            "extra": self.extra,
            "timestamp": self.timestamp.isoformat(),
            "source_dag_id": run.dag.dag_id if run else None,
            "source_run_id": run.run_id if run else None,
            "source_task_id": self.source_task_id or None,
            "source_map_index": self.source_map_index,
            "source_aliases": [self.source_alias] if self.source_alias else [],
        }


class AssetDagRunQueue(TenantOwned):
    """An asset updated since the consuming DAG's last asset-triggered run: input to its schedule."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE)
    target_dag = models.ForeignKey(Dag, on_delete=models.CASCADE, related_name="asset_queue")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["asset", "target_dag"], name="adrq_unique_asset_dag")]


class SchedulerLease(TenantOwned):
    """Which scheduler process owns a tenant; a lease not renewed before `expires_at` may be taken over."""

    owner = models.CharField(max_length=200)  # "<host>:<pid>:<random>" of the supervisor holding it
    acquired_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # When the owner's tenant process began scheduling the tenant (None until it has, and again while the
    # supervisor starts a new one): a held lease is not yet a served tenant.
    serving_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="schedulerlease_unique_tenant")]
