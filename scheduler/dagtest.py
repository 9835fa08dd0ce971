"""`dags test`: run DAG files once, for real, in a throw-away tenant, and report every task's final state.

The file or directory is uploaded into an ephemeral tenant ("dags-test-<random>", deleted at the end, even on
error) with the repository upload service (its DAGs paused, so no scheduler ever picks them up). One manual
run per DAG is created and driven to its end with exactly the engine's code — schedule_run, then
queue_task_instances, then the task runner for each queued try — honouring retry delays and reschedule dates
by waiting, running deferred tasks' triggers inline. Independent tasks run in parallel on a small thread pool.
Runs the tasks trigger (TriggerDagRunOperator) are driven too, so a task waiting for them can finish, and so
is a finished run a task clears again (reset_dag_run).
"""

from __future__ import annotations

import logging
import secrets
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min
from django.utils import timezone

from scheduler.models import NO_MAP_INDEX, Dag, DagRun, DagVersion, TaskInstance
from scheduler.states import RUN_FINISHED, DagRunState, RunType, TIState
from tenants.models import Tenant
from tradewind.accounts.actors import Actor
from tradewind.errors import DomainError
from workers.logs import get_log_store

log = logging.getLogger(__name__)

ACTOR = Actor.system("dags test")
BUNDLE_NAME = "dags-test"
LOG_TAIL_LINES = 30
# Passes in a row in which nothing ran and nothing is due: the run cannot make progress any more.
IDLE_PASSES_BEFORE_STUCK = 3
POLL_SECONDS = 0.5


@dataclass
class TaskProblem:
    """A task instance that did not succeed, with what the user needs to see to fix it."""

    dag_id: str
    task: str  # "<task_id>" or "<task_id>[<map_index>]"
    state: str
    error: str
    log_tail: str


@dataclass
class DagTestReport:
    """The result of one `dags test`: the --json document, plus details for the human-readable output."""

    document: dict[str, Any]
    task_problems: list[TaskProblem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # run-level: a DAG not found, a conf refused, ...
    one_dag: bool = False  # --dag-id: other files' import errors are reported but do not fail the test

    @property
    def succeeded(self) -> bool:
        """True when at least one run ran, every run succeeded, and no file failed to import (with one DAG
        picked by --dag-id: that DAG was found and its run succeeded)."""
        dags = self.document["dags"]
        return (
            bool(dags)
            and all(entry["state"] == DagRunState.SUCCESS for entry in dags)
            and (self.one_dag or not self.document["import_errors"])
            and not self.problems
        )


def test_dags(
    *,
    path: Path,
    dag_id: str | None,
    logical_date: datetime | None,
    conf: dict | None,
    secrets_tenant: Tenant | None,
) -> dict:
    """Run every DAG of `path` (a DAG file or a directory) once and return the --json document:
    {"dags": [{"dag_id", "run_id", "state", "tasks": {"<task_id>" | "<task_id>[<map_index>]": state}}],
     "import_errors": {"<file>": "<message>"}}."""
    return run_dags_test(
        path=path, dag_id=dag_id, logical_date=logical_date, conf=conf, secrets_tenant=secrets_tenant
    ).document


test_dags.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, whatever its name


def run_dags_test(
    *,
    path: Path,
    dag_id: str | None = None,
    logical_date: datetime | None = None,
    conf: dict | None = None,
    secrets_tenant: Tenant | None = None,
    parallelism: int | None = None,
) -> DagTestReport:
    """test_dags with the details the readable output shows (task errors and log tails, run problems).
    `parallelism`: how many tries, triggers and callbacks run at once (default: TRADEWIND_PARALLELISM, as the
    local executor; a task waiting for a run it triggered holds one of them)."""
    tenant = _create_ephemeral_tenant()
    try:
        run = _DagTest(
            tenant=tenant,
            secrets_tenant_id=secrets_tenant.pk if secrets_tenant is not None else None,
            parallelism=parallelism or settings.TRADEWIND_PARALLELISM,
        )
        return run.run(Path(path), dag_id=dag_id, logical_date=logical_date or timezone.now(), conf=conf)
    finally:
        _delete_ephemeral_tenant(tenant)


class _DagTest:
    """One `dags test` in one ephemeral tenant."""

    def __init__(self, *, tenant: Tenant, secrets_tenant_id: int | None, parallelism: int) -> None:
        self.tenant = tenant
        self.secrets_tenant_id = secrets_tenant_id
        self.parallelism = parallelism
        self.report = DagTestReport(document={"dags": [], "import_errors": {}})

    def run(
        self, path: Path, *, dag_id: str | None, logical_date: datetime, conf: dict | None
    ) -> DagTestReport:
        dags = self._upload(path)
        self.report.one_dag = dag_id is not None
        if dag_id is not None:
            wanted = [dag for dag in dags if dag.dag_id == dag_id]
            if not wanted:
                found = ", ".join(dag.dag_id for dag in dags) or "none"
                self.report.problems.append(f"DAG {dag_id!r} not found in {path} (DAGs found: {found})")
            dags = wanted
        runs = [self._create_run(dag, logical_date, conf) for dag in dags]
        self._drive()
        for dag, run in zip(dags, runs, strict=True):
            self._report_run(dag, run)
        return self.report

    def _upload(self, path: Path) -> list[Dag]:
        from scheduler.bundles import upload_bundle

        try:
            result = upload_bundle(
                tenant=self.tenant,
                actor=ACTOR,
                source=path,
                bundle_name=BUNDLE_NAME,
                pause_new_dags=True,
                secrets_tenant_id=self.secrets_tenant_id,
            )
        except DomainError as error:
            self.report.document["import_errors"][path.name] = f"the upload was rejected: {error}"
            return []
        self.report.document["import_errors"] = dict(sorted(result.import_errors.items()))
        return list(
            Dag.objects.for_tenant(self.tenant)
            .filter(dag_id__in=result.dags, is_active=True, active_version__isnull=False)
            .order_by("dag_id")
        )

    def _create_run(self, dag: Dag, logical_date: datetime, conf: dict | None) -> DagRun | str:
        """The new (queued) run; or why it could not be created (e.g. conf refused by the DAG's params)."""
        from scheduler import services

        try:
            with transaction.atomic():
                run = services.create_dag_run(
                    tenant=self.tenant,
                    dag=dag,
                    actor=ACTOR,
                    run_type=RunType.MANUAL,
                    logical_date=logical_date,
                    data_interval=None,
                    conf=conf,
                )
        except DomainError as error:
            return f"DAG {dag.dag_id!r}: the run could not be created: {error}"
        return run

    # --- driving the runs ---------------------------------------------------------------------------

    def _drive(self) -> None:
        """Drive every run of the tenant (the ones created above and the ones their tasks trigger) until
        each one has finished or can make no more progress."""
        futures: dict[Future, tuple[str, int]] = {}
        finished: set[int] = set()
        triggering: set[int] = set()
        with ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="dags-test") as pool:
            try:
                self._loop(pool, futures, finished, triggering)
            except BaseException:  # Ctrl-C included: do not wait for running tasks to finish on their own
                self._terminate_running()
                raise

    def _loop(
        self,
        pool: ThreadPoolExecutor,
        futures: dict[Future, tuple[str, int]],
        finished: set[int],
        triggering: set[int],
    ) -> None:
        idle = 0
        while True:
            started = self._pass(pool, futures, finished, timezone.now())
            started += self._start_triggers(pool, futures, triggering)
            if not futures and self._all_finished(finished):
                return
            due = self._next_due()
            if futures:
                # Wake up now and then even while tasks run: a task may wait for a run it triggered.
                timeout = POLL_SECONDS
                if due is not None:
                    timeout = min(timeout, max(0.0, (due - timezone.now()).total_seconds()))
                done, _ = wait(list(futures), timeout=timeout, return_when=FIRST_COMPLETED)
                for future in done:
                    kind, pk = futures.pop(future)
                    if kind == "trigger":
                        triggering.discard(pk)
                    self._collect(future, kind, pk)
                idle = 0
            elif due is not None:
                time.sleep(max(0.0, (due - timezone.now()).total_seconds()) + 0.01)
                idle = 0
            else:
                idle = 0 if started else idle + 1
                if idle >= IDLE_PASSES_BEFORE_STUCK:
                    self._give_up(finished)
                    return
                time.sleep(POLL_SECONDS / 10)

    def _pass(
        self,
        pool: ThreadPoolExecutor,
        futures: dict[Future, tuple[str, int]],
        finished: set[int],
        now: datetime,
    ) -> int:
        """One scheduling pass over the unfinished runs; returns how many tries it started."""
        from scheduler import services

        # A finished run cleared since (TriggerDagRunOperator's reset_dag_run) is driven again.
        finished -= set(
            DagRun.objects.for_tenant(self.tenant)
            .filter(pk__in=finished)
            .exclude(state__in=RUN_FINISHED)
            .values_list("pk", flat=True)
        )
        started = 0
        for run in (
            DagRun.objects.for_tenant(self.tenant)
            .exclude(pk__in=finished)
            .select_related("dag")
            .order_by("pk")
        ):
            # schedule_run starts a queued run itself; the DAGs are paused, so only this loop drives them.
            ready = services.schedule_run(run, now=now)
            for ti in services.queue_task_instances(ready):
                future = pool.submit(self._in_thread, self._run_task, ti.pk, ti.try_number)
                futures[future] = ("task", ti.pk)
                started += 1
            if run.state in RUN_FINISHED:
                finished.add(run.pk)
                futures[pool.submit(self._in_thread, self._run_dag_callbacks, run.pk)] = ("callback", run.pk)
                log.info("run %s of %s finished: %s", run.run_id, run.dag.dag_id, run.state)
        return started

    def _start_triggers(
        self, pool: ThreadPoolExecutor, futures: dict[Future, tuple[str, int]], triggering: set[int]
    ) -> int:
        deferred = TaskInstance.objects.for_tenant(self.tenant).filter(state=TIState.DEFERRED)
        started = 0
        for ti in deferred.exclude(pk__in=triggering):
            triggering.add(ti.pk)
            futures[pool.submit(self._in_thread, self._run_trigger, ti.pk)] = ("trigger", ti.pk)
            started += 1
        return started

    def _all_finished(self, finished: set[int]) -> bool:
        return not DagRun.objects.for_tenant(self.tenant).exclude(pk__in=finished).exists()

    def _next_due(self) -> datetime | None:
        """When the earliest waiting retry or reschedule becomes due."""
        return (
            TaskInstance.objects.for_tenant(self.tenant)
            .filter(state__in=[TIState.UP_FOR_RETRY, TIState.UP_FOR_RESCHEDULE], next_retry_at__isnull=False)
            .aggregate(at=Min("next_retry_at"))["at"]
        )

    def _terminate_running(self) -> None:
        """Stop the sandboxed children of the tries still running (SIGTERM, then SIGKILL)."""
        from workers import runner

        runner.stop_running_tries()

    def _give_up(self, finished: set[int]) -> None:
        for run in DagRun.objects.for_tenant(self.tenant).exclude(pk__in=finished).select_related("dag"):
            waiting = sorted(
                f"{ti.task_id}={ti.state}"
                for ti in TaskInstance.objects.filter(dag_run=run).exclude(state__in=_DONE_STATES)
            )
            message = (
                f"DAG {run.dag.dag_id!r}: run {run.run_id} cannot make progress "
                f"(state {run.state}; unfinished tasks: {', '.join(waiting) or 'none'})"
            )
            log.error(message)
            self.report.problems.append(message)

    # --- what runs on the pool ----------------------------------------------------------------------

    @staticmethod
    def _in_thread(function: Any, *args: Any) -> Any:
        """Run `function` on a pool thread, closing that thread's database connection afterwards."""
        try:
            return function(*args)
        finally:
            connection.close()

    def _run_task(self, ti_id: int, try_number: int) -> None:
        from workers.runner import run_task_instance

        run_task_instance(
            tenant_id=self.tenant.pk,
            ti_id=ti_id,
            try_number=try_number,
            secrets_tenant_id=self.secrets_tenant_id,
        )

    def _run_trigger(self, ti_id: int) -> None:
        from workers.runner import run_trigger_inline

        ti = TaskInstance.objects.for_tenant(self.tenant).get(pk=ti_id)
        run_trigger_inline(ti, secrets_tenant_id=self.secrets_tenant_id)

    def _run_dag_callbacks(self, run_pk: int) -> None:
        from workers.runner import run_dag_callbacks

        result = run_dag_callbacks(
            tenant_id=self.tenant.pk, dag_run_id=run_pk, secrets_tenant_id=self.secrets_tenant_id
        )
        if result and result.get("error"):
            log.warning("a DAG callback failed: %s", result["error"])

    def _collect(self, future: Future, kind: str, pk: int) -> None:
        error = future.exception()
        if error is not None:
            log.error("dags test: running %s %s failed", kind, pk, exc_info=error)
            self.report.problems.append(
                f"the platform failed while running a {kind}: {type(error).__name__}: {error}"
            )

    # --- the report ---------------------------------------------------------------------------------

    def _report_run(self, dag: Dag, run: DagRun | str) -> None:
        if isinstance(run, str):
            self.report.problems.append(run)
            self.report.document["dags"].append(
                {"dag_id": dag.dag_id, "run_id": None, "state": DagRunState.FAILED.value, "tasks": {}}
            )
            return
        run.refresh_from_db()
        store = get_log_store()
        tasks: dict[str, str] = {}
        for ti in (
            TaskInstance.objects.filter(dag_run=run)
            .select_related("dag_run__dag")
            .order_by("task_id", "map_index")
        ):
            key = ti.task_id if ti.map_index == NO_MAP_INDEX else f"{ti.task_id}[{ti.map_index}]"
            tasks[key] = str(ti.state)
            if ti.state == TIState.FAILED:
                self.report.task_problems.append(
                    TaskProblem(
                        dag_id=dag.dag_id,
                        task=key,
                        state=str(ti.state),
                        error=ti.error,
                        log_tail=store.tail(ti, ti.try_number, LOG_TAIL_LINES) if ti.try_number else "",
                    )
                )
        self.report.document["dags"].append(
            {"dag_id": dag.dag_id, "run_id": run.run_id, "state": str(run.state), "tasks": tasks}
        )


_DONE_STATES = [TIState.SUCCESS, TIState.FAILED, TIState.SKIPPED, TIState.UPSTREAM_FAILED, TIState.REMOVED]


# --- the ephemeral tenant --------------------------------------------------------------------------------


def _create_ephemeral_tenant() -> Tenant:
    from tenants import services as tenants

    return tenants.create_tenant(
        slug=f"dags-test-{secrets.token_hex(6)}",
        name="dags test (ephemeral)",
        max_dags=100_000,
        max_bundle_bytes=10 * 1024**3,
        max_active_tasks=10_000,
        max_active_runs=10_000,
    )


def _delete_ephemeral_tenant(tenant: Tenant) -> None:
    """Remove the tenant with all its rows, bundle files and logs (runs pin DAG versions, which pin bundle
    versions, with PROTECT: delete in that order). Audit entries outlive it by design."""
    from scheduler.bundles import delete_bundle_files

    tenant_id = tenant.pk
    try:
        with transaction.atomic():
            DagRun.objects.for_tenant(tenant).delete()
            DagVersion.objects.for_tenant(tenant).delete()
            tenant.delete()
    except Exception:
        log.exception("dags test: could not delete the ephemeral tenant %s", tenant.slug)
        return
    delete_bundle_files(tenant_id)
    get_log_store().delete_tenant(tenant_id)


def parse_logical_date(text: str) -> datetime:
    """A --logical-date value: an ISO 8601 date or date-time; without a time zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date or date-time (e.g. 2024-01-31 or 2024-01-31T06:00:00+02:00)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
