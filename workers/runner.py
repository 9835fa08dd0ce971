"""The parent side of one task try: the single entry point every executor calls.

run_task_instance starts the try (fenced: a duplicate or late delivery does nothing), builds the task's
ti_info from the database, runs the task in a sandboxed child of the run's pinned bundle version (answering
its requests with a TaskRpcHandler, writing its output masked to the task log, heartbeating meanwhile), and
hands the outcome to the engine's finish_task_instance. Whatever happens — the child crashes, times out, the
bundle is gone — the try ends with an outcome, never as a task instance stuck in `running`.

Also here: a finished run's DAG-level callbacks and a deferred task's trigger run inline (for `dags test`),
both sandboxed the same way.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from scheduler.assets import assets_waited_on, schedule_keys
from scheduler.evaluation import TaskSpec
from scheduler.models import NO_MAP_INDEX, AssetEvent, DagRun, TaskInstance, XCom
from scheduler.services import get_dag_spec, load_for_runner, serialized_of
from scheduler.states import RUN_FINISHED, DagRunState, RunType, TIState
from tradewind.sdk.execution import TRIGGER_TIMEOUT_REASON
from workers.heartbeat import Heartbeat, running_children
from workers.logs import LogWriter, get_log_store
from workers.rpc import TaskRpcHandler

if TYPE_CHECKING:
    from tradewind.secrets.masking import Masker

log = logging.getLogger(__name__)

# The child gets this long past execution_timeout before the parent kills it: the task's own timeout fires
# first inside the child (a Python traceback, the failure callbacks); the parent's is the backstop.
TIMEOUT_GRACE_S = 2.0


def run_task_instance(
    *, tenant_id: int, ti_id: int, try_number: int, secrets_tenant_id: int | None = None
) -> TaskInstance | None:
    """Run one try of one task instance and record its outcome; None when this delivery is a duplicate or
    late (the fenced start did not win). `secrets_tenant_id` (dags test --tenant) answers variables and
    connections from another tenant."""
    from scheduler import services

    ti = _start(
        tenant_id=tenant_id,
        ti_id=ti_id,
        try_number=try_number,
        hostname=socket.gethostname(),
        pid=os.getpid(),
    )
    if ti is None:
        log.info(
            "task instance already started or moved on", extra={"ti_id": ti_id, "try_number": try_number}
        )
        return None
    handler = None
    try:
        masker = _new_masker()
        # The try's XComs are written with its outcome: one statement less for every task returning a value.
        handler = TaskRpcHandler(ti=ti, masker=masker, secrets_tenant_id=secrets_tenant_id, defer_xcoms=True)
        with get_log_store().writer(ti, ti.try_number, masker=masker) as out, Heartbeat(ti) as beat:
            outcome = _masked_outcome(_run_try(ti, handler, out, beat.child_started), masker)
    except Exception as error:  # the log or the database failed us: still never leave the try running
        log.exception("the task runner failed", extra={"ti_id": ti.pk})
        from workers.sandbox import failed_outcome

        outcome = failed_outcome(f"the task runner failed: {type(error).__name__}")
    return services.finish_task_instance(ti, outcome, handler.pending_xcoms if handler else None)


def _start(**start: Any) -> TaskInstance | None:
    """services.start_task_instance, once more on a new connection if the thread's connection was broken: a
    thread running tries back to back checks it only once a second (executors.check_connections), so a
    database restarted meanwhile is found here. The start is fenced: a second attempt never starts it twice."""
    from django.db import InterfaceError, OperationalError, connection

    from scheduler import services

    try:
        return services.start_task_instance(**start)
    except (InterfaceError, OperationalError):
        log.warning("the database connection was broken; starting the try on a new one", exc_info=True)
        connection.close()
        return services.start_task_instance(**start)


def run_trigger_inline(ti: TaskInstance, *, secrets_tenant_id: int | None = None) -> None:
    """Run a deferred task instance's trigger in the sandbox now (until it fires, fails or times out) and
    resume the task with the result; what `dags test` does until the triggerer runs triggers."""
    from scheduler import services
    from workers import sandbox

    ti = _load(ti)
    if ti.state != TIState.DEFERRED or not ti.trigger:
        return
    trigger = ti.trigger
    timeout_s = trigger.get("timeout_s")
    if ti.trigger_timeout_at is not None:
        timeout_s = max(0.0, (ti.trigger_timeout_at - timezone.now()).total_seconds())
    masker = _new_masker()
    handler = TaskRpcHandler(ti=ti, masker=masker, secrets_tenant_id=secrets_tenant_id)
    with get_log_store().writer(ti, ti.try_number, masker=masker) as out:
        out.line(f"[tradewind] deferred: running trigger {trigger['classpath']} inline")
        try:
            result = sandbox.run_trigger(
                _bundle_root(ti.dag_run),
                trigger["classpath"],
                trigger.get("kwargs") or {},
                tenant_id=ti.tenant_id,
                handler=handler,
                output=out.write,
                timeout_s=timeout_s,
            )
        except Exception as error:
            log.exception("running a trigger failed", extra={"ti_id": ti.pk})
            result = {"error": f"the trigger could not be run: {type(error).__name__}: {error}"}
        if "event" in result:
            out.line("[tradewind] trigger fired; the task resumes")
        else:
            out.line(f"[tradewind] trigger failed: {result.get('error')}")
    if "event" in result:
        services.resume_deferred(ti, event=result["event"])
        return
    timed_out = result.get("timeout") or (
        ti.trigger_timeout_at is not None and timezone.now() >= ti.trigger_timeout_at
    )
    # Airflow's reason for a trigger timeout, which the task turns into TaskDeferralTimeout.
    error = TRIGGER_TIMEOUT_REASON if timed_out else masker.mask(str(result.get("error")))
    services.resume_deferred(ti, event=None, error=error)


def run_dag_callbacks(
    *, tenant_id: int, dag_run_id: int, secrets_tenant_id: int | None = None
) -> dict | None:
    """Run a finished run's DAG-level on_success_callback / on_failure_callback in the sandbox, with the
    context of the run's last task instance (the failed one for a failure), as Airflow does. Returns the
    sandbox's {"error", "traceback", ...} or None when the run is not finished or the DAG has no such
    callback. Call once per run finish: the caller that saw the run finish owns that."""
    from workers import sandbox

    run = (
        DagRun.objects.for_tenant(tenant_id)
        .select_related("dag", "dag_version__bundle_version")
        .filter(pk=dag_run_id)
        .first()
    )
    if run is None or run.state not in RUN_FINISHED:
        return None
    kind = "success" if run.state == DagRunState.SUCCESS else "failure"
    serialized = serialized_of(run.dag_version)
    if not serialized.get(f"has_on_{kind}_callback"):
        return None
    ti = _callback_task_instance(run, kind)
    if ti is None:
        return None
    info = build_ti_info(ti)
    # As in Airflow, the callback's dag_run is the finished run, and its ti the finished task instance.
    info.update(
        reason=_callback_reason(run, kind),
        run_state=run.state,
        end_date=_iso(run.end_date),
        ti_state=ti.state,
        ti_end_date=_iso(ti.end_date),
    )
    masker = _new_masker()
    handler = TaskRpcHandler(ti=ti, masker=masker, secrets_tenant_id=secrets_tenant_id)
    with get_log_store().dag_callback_writer(run, kind, masker=masker) as out:
        try:
            result = sandbox.run_dag_callback(
                _bundle_root(run),
                _fileloc(run),
                run.dag.dag_id,
                kind,
                info,
                tenant_id=tenant_id,
                handler=handler,
                output=out.write,
            )
        except Exception as error:
            log.exception("running a DAG callback failed", extra={"dag_run_id": run.pk})
            result = {"error": f"the DAG callback could not be run: {type(error).__name__}: {error}"}
        if result.get("error"):
            out.line(f"[tradewind] DAG on_{kind}_callback failed: {result['error']}")
    return _masked_outcome(result, masker)


def build_ti_info(ti: TaskInstance) -> dict[str, Any]:
    """The ti_info the child's run_task gets (SDK_SPEC.md): the try's identity, the run's dates, conf and
    type, the previous successful run's interval, deferral resumption and triggering asset events."""
    run = ti.dag_run
    previous = _previous_success(run)
    mapped_count = None
    if ti.map_index != NO_MAP_INDEX:
        mapped_count = (
            TaskInstance.objects.filter(dag_run=run, task_id=ti.task_id)
            .exclude(map_index=NO_MAP_INDEX)
            .count()
        )
    return {
        "dag_id": run.dag.dag_id,
        "task_id": ti.task_id,
        "run_id": run.run_id,
        "map_index": ti.map_index,
        "try_number": ti.try_number,
        "max_tries": ti.max_tries,
        "logical_date": _iso(run.logical_date),
        "data_interval_start": _iso(run.data_interval_start),
        "data_interval_end": _iso(run.data_interval_end),
        "run_after": _iso(run.run_after),
        "start_date": _iso(run.start_date),
        "ti_start_date": _iso(ti.start_date),
        "run_type": run.run_type,
        "conf": run.conf or {},
        "external_trigger": bool(run.external_trigger or run.run_type == RunType.MANUAL),
        "prev_data_interval_start_success": _iso(previous and previous.data_interval_start),
        "prev_data_interval_end_success": _iso(previous and previous.data_interval_end),
        "prev_start_date_success": _iso(previous and previous.start_date),
        "prev_end_date_success": _iso(previous and previous.end_date),
        "prev_logical_date_success": _iso(previous and previous.logical_date),
        "next_method": ti.next_method or None,
        "next_kwargs": ti.next_kwargs if ti.next_method else None,
        "first_try_start_date": _iso(ti.first_try_start_date or ti.start_date),
        "expanded_ti_count": mapped_count,
        "triggering_asset_events": _triggering_asset_events(run),
    }


# --- one try ---------------------------------------------------------------------------------------------


def _run_try(
    ti: TaskInstance, handler: TaskRpcHandler, out: LogWriter, on_start: Callable[[int], None]
) -> dict:
    from workers import sandbox

    label = ti.task_id if ti.map_index == NO_MAP_INDEX else f"{ti.task_id}[{ti.map_index}]"
    out.line(f"[tradewind] {ti.dag_run.dag.dag_id}.{label} {ti.dag_run.run_id}")
    out.line(f"[tradewind] starting attempt {ti.try_number} of {ti.max_tries + 1}")
    timeout_s: float | None = None
    try:
        task = _task_spec(ti)
        if task.execution_timeout_s:
            timeout_s = task.execution_timeout_s + TIMEOUT_GRACE_S
        root = _bundle_root(ti.dag_run)
        if not ti.next_method and not _first_start(ti):
            # A new try or poke starts from no XComs of its own (a deferred task resuming keeps them), as in
            # Airflow; the first start of a task instance has none.
            XCom.objects.filter(dag_run_id=ti.dag_run_id, task_id=ti.task_id, map_index=ti.map_index).delete()
        outcome = sandbox.run_task(
            root,
            _fileloc(ti.dag_run),
            build_ti_info(ti),
            tenant_id=ti.tenant_id,
            handler=handler,
            output=out.write,
            timeout_s=timeout_s,
            on_start=on_start,
        )
    except Exception as error:
        log.exception("the task runner failed", extra={"ti_id": ti.pk})
        outcome = sandbox.failed_outcome(f"the task runner failed: {type(error).__name__}: {error}")
    if (
        timeout_s is not None
        and outcome.get("state") == "failed"
        and str(outcome.get("error") or "").startswith("execution_timeout of ")
    ):
        limit = timeout_s - TIMEOUT_GRACE_S
        outcome["error"] = f"execution_timeout of {limit:g} s exceeded; the task was killed"
    if outcome.get("state") == "failed" and outcome.get("error") and not outcome.get("traceback"):
        out.line(f"[tradewind] ERROR {outcome['error']}")
    out.line(f"[tradewind] attempt {ti.try_number} ended: {outcome.get('state')}")
    return outcome


def _first_start(ti: TaskInstance) -> bool:
    """Whether this is the task instance's first start ever: its first try, not a reschedule's later poke
    (start_task_instance stamps both dates with the same moment only then)."""
    return ti.try_number == 1 and ti.start_date is not None and ti.start_date == ti.first_try_start_date


def _task_spec(ti: TaskInstance) -> TaskSpec:
    task = get_dag_spec(ti.dag_run.dag_version).tasks.get(ti.task_id)
    if task is None:
        raise LookupError(f"task {ti.task_id!r} is not in the DAG version this run is pinned to")
    return task


def _bundle_root(run: DagRun) -> Path:
    from scheduler.bundles import bundle_root

    return bundle_root(run.dag_version.bundle_version)


def _fileloc(run: DagRun) -> str:
    return serialized_of(run.dag_version).get("fileloc") or run.dag.fileloc


def _masked_outcome(outcome: dict, masker: Masker) -> dict:
    """Errors, tracebacks and rendered fields leave the runner masked (they are stored and shown)."""
    masked = dict(outcome)
    for key in ("error", "traceback"):
        if isinstance(masked.get(key), str):
            masked[key] = masker.mask(masked[key])
    if masked.get("rendered_fields"):
        masked["rendered_fields"] = masker.mask_structure(masked["rendered_fields"])
    return masked


def stop_running_tries() -> None:
    """Stop the sandboxed children of the tries this process is running (`dags test` on Ctrl-C)."""
    from workers import sandbox

    for pid in running_children():
        sandbox.terminate(pid)


# --- reads for ti_info -----------------------------------------------------------------------------------


def _load(ti: TaskInstance) -> TaskInstance:
    loaded = load_for_runner(ti.pk)
    if loaded is None:
        raise TaskInstance.DoesNotExist(f"task instance {ti.pk} is gone")
    return loaded


# The previous successful run is the same for every task of a run (until an earlier run succeeds meanwhile,
# which max_active_runs=1 rules out): a worker reads it once per run and this many seconds, not once per try.
PREVIOUS_SUCCESS_TTL_S = 5.0
_previous_successes: dict[int, tuple[float, DagRun | None]] = {}


def _previous_success(run: DagRun) -> DagRun | None:
    now = time.monotonic()
    cached = _previous_successes.get(run.pk)
    if cached is not None and cached[0] > now:
        return cached[1]
    if len(_previous_successes) >= 1000:
        _previous_successes.clear()
    previous = _read_previous_success(run)
    _previous_successes[run.pk] = (now + PREVIOUS_SUCCESS_TTL_S, previous)
    return previous


def _read_previous_success(run: DagRun) -> DagRun | None:
    runs = DagRun.objects.filter(dag_id=run.dag_id, state=DagRunState.SUCCESS).exclude(pk=run.pk)
    if run.logical_date is not None:
        runs = runs.filter(logical_date__lt=run.logical_date).order_by("-logical_date")
    else:
        runs = runs.filter(run_after__lt=run.run_after).order_by("-run_after")
    return runs.first()


def _triggering_asset_events(run: DagRun) -> list[dict]:
    """For an asset-triggered run: the events of the assets its DAG is scheduled on since the DAG's
    previous asset-triggered run was created (the events that made this run due)."""
    if run.run_type != RunType.ASSET_TRIGGERED:
        return []
    keys = schedule_keys(serialized_of(run.dag_version).get("schedule"))
    if not keys:
        return []
    previous = (
        DagRun.objects.filter(
            dag_id=run.dag_id, run_type=RunType.ASSET_TRIGGERED, created_at__lt=run.created_at
        )
        .order_by("-created_at")
        .first()
    )
    events = AssetEvent.objects.filter(
        tenant_id=run.tenant_id,
        asset__in=assets_waited_on(run.tenant_id, keys),
        timestamp__lte=run.created_at,
    ).select_related("asset", "source_dag_run__dag")
    if previous is not None:
        events = events.filter(timestamp__gt=previous.created_at)
    return [event.for_task() for event in events.order_by("timestamp", "pk")]


def _callback_task_instance(run: DagRun, kind: str) -> TaskInstance | None:
    tis = TaskInstance.objects.filter(dag_run=run).select_related(
        "dag_run__dag", "dag_run__dag_version__bundle_version"
    )
    if kind == "failure":
        failed = tis.filter(state=TIState.FAILED).order_by("-end_date", "-pk").first()
        if failed is not None:
            return failed
    return (
        tis.exclude(end_date__isnull=True).order_by("-end_date", "-pk").first() or tis.order_by("-pk").first()
    )


def _callback_reason(run: DagRun, kind: str) -> str:
    """Airflow's `reason` in a DAG callback's context: "success", "timed_out" (dagrun_timeout) or
    "task_failure"."""
    if kind == "success":
        return "success"
    return "timed_out" if "dagrun_timeout" in run.failure_reason else "task_failure"


def _new_masker() -> Masker:
    from tradewind.secrets.masking import Masker

    return Masker()


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()
