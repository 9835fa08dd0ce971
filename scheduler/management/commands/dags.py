"""`manage.py dags ...`: DAG repositories, DAGs, runs and backfills from the command line.

`test` and `upload` work on DAG files; the other subcommands act on one tenant's DAGs through the same
services as the API. Commands that change something (or read a tenant's DAGs) take `--as USERNAME` to act
as that member of the tenant (their role and per-DAG grants must allow it, and the audit log names them);
without `--as` they act as the system, i.e. the platform operator who has shell access.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from scheduler import dagtest, queries, services
from scheduler.models import Backfill, Bundle, BundleVersion, Dag, DagRun, SchedulerLease
from scheduler.states import RUN_FINISHED, DagRunState
from tenants.models import Membership, Tenant
from tenants.roles import can
from tradewind.accounts.actors import Actor
from tradewind.accounts.cli import add_actor_arguments, command_actor
from tradewind.errors import DomainError

TEST_HELP = """\
Parse FILE_OR_DIR in the sandbox, create one run per DAG in a throw-away tenant and execute every task
through the real task runner (a sandboxed child per task, retries, XCom, sensors), then print the final
states. The throw-away tenant, with its runs and logs, is deleted at the end.

With --json, stdout carries exactly one JSON document (all logging goes to stderr):
  {"dags": [{"dag_id": ..., "run_id": ..., "state": ...,
             "tasks": {"<task_id>" or "<task_id>[<map_index>]": "<state>"}}],
   "import_errors": {"<file>": "<message>"}}

Exit status: 0 when every run succeeded and no file had an import error (with --dag-id: when that DAG
was found and its run succeeded; other files' import errors are still listed); 1 otherwise.
"""

UPLOAD_HELP = """\
Upload a DAG repository (a .zip, .tar.gz or .tgz archive, a directory, or one .py file) to a tenant as a new
version of bundle NAME, parse it in the sandbox and activate it. Prints the DAGs found, the import errors and
whether the version was activated.

Exit status: 1 when the archive is rejected, or with --validate-only when a file has an import error;
0 otherwise.
"""


TRIGGER_HELP = """\
Create a manual run of DAG (Airflow's `dags trigger`). The scheduler runs it; with --wait this command waits
until the run has finished (it does not run anything itself: a scheduler must be running, e.g.
`manage.py scheduler` or `manage.py standalone`). Exit status with --wait: 0 when the run succeeded, 1 when
it failed or --timeout passed.
"""

BACKFILL_HELP = """\
Create a backfill of DAG: runs for the complete data intervals of its schedule whose logical dates lie
between --start and --end (Airflow 3's backfill). The scheduler creates the runs over time, at most
--max-active-runs at once. A date that already has a run is skipped, unless --reprocess says to run it
again (failed: failed runs; completed: every finished run); a queued or running run is never touched.
Manage it with backfill-list, backfill-pause, backfill-unpause and backfill-cancel.
"""

CLEAR_HELP = """\
Clear task instances of one run so the scheduler runs them again (Airflow's `tasks clear`): every task of
the run, or those whose task id matches --task-regex, with their downstream / upstream tasks. The ended
tries stay in the task instances' history; a finished run goes back to queued. Lists what it will clear and
asks for confirmation unless --yes is given.
"""

# Who may run each subcommand that acts on a tenant (tenants.roles.MIN_ROLE actions).
ACTIONS = {
    "list": "dag.view",
    "list-runs": "run.view",
    "trigger": "run.trigger",
    "pause": "dag.edit",
    "unpause": "dag.edit",
    "clear": "run.clear",
    "backfill": "run.trigger",
    "backfill-list": "run.view",
    "backfill-pause": "run.trigger",
    "backfill-unpause": "run.trigger",
    "backfill-cancel": "run.trigger",
    "versions": "bundle.view",
    "rollback": "bundle.upload",
}
POLL_SECONDS = 0.5
HINT_AFTER_SECONDS = 15.0


class Command(BaseCommand):
    help = (
        "DAGs from the command line: test and upload DAG files; list, pause, trigger, clear and backfill a "
        "tenant's DAGs; list runs; list and roll back DAG repository versions. Subcommands that act on a "
        "tenant take --tenant SLUG and --as USERNAME (without --as: the system, i.e. the operator)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
        test = commands.add_parser(
            "test",
            help="run DAG files once in a throw-away tenant and print every task's final state",
            description=TEST_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        test.add_argument("path", metavar="FILE_OR_DIR", help="a DAG file or a directory of DAG files")
        test.add_argument("--dag-id", help="run only this DAG")
        test.add_argument(
            "--logical-date",
            help="the runs' logical date, ISO 8601 (2024-01-31 or 2024-01-31T06:00:00+00:00); default: now",
        )
        test.add_argument("--conf", help="the runs' conf, a JSON object (checked against the DAG's params)")
        test.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        test.add_argument(
            "--tenant",
            metavar="SLUG",
            help="answer Variable and Connection lookups from this tenant's secrets",
        )
        upload = commands.add_parser(
            "upload",
            help="upload a DAG repository to a tenant, parse it and activate it",
            description=UPLOAD_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        upload.add_argument(
            "path", metavar="PATH_OR_ARCHIVE", help="a .zip/.tar.gz/.tgz, a directory or a .py file"
        )
        upload.add_argument("--tenant", metavar="SLUG", required=True, help="the tenant to upload to")
        upload.add_argument(
            "--bundle", metavar="NAME", default="default", help="the bundle (default: default)"
        )
        upload.add_argument(
            "--validate-only", action="store_true", help="parse and report import errors without activating"
        )
        self._add_tenant_commands(commands)

    def _add_tenant_commands(self, commands: Any) -> None:
        def add(name: str, help_text: str, description: str | None = None, dag: bool = True) -> CommandParser:
            sub = commands.add_parser(
                name,
                help=help_text,
                description=description or help_text,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
            add_actor_arguments(sub)
            if dag:
                sub.add_argument("dag_id", metavar="DAG", help="the DAG's dag_id")
            return sub

        add("list", "list the tenant's DAGs (those in the active version of their bundle)", dag=False)
        runs = add("list-runs", "list a DAG's runs, latest first")
        runs.add_argument("--state", choices=DagRunState.values, help="only runs in this state")
        runs.add_argument("--limit", type=int, default=25, help="at most this many runs (default 25)")
        trigger = add("trigger", "create a manual run of a DAG", TRIGGER_HELP)
        trigger.add_argument(
            "--conf", "-c", help="the run's conf, a JSON object (checked against the params)"
        )
        trigger.add_argument("--logical-date", "-l", help="ISO 8601 date or date-time (default: none)")
        trigger.add_argument("--run-id", "-r", help="the run's id (default: manual__<time>_<random>)")
        trigger.add_argument("--note", default="", help="a note on the run")
        trigger.add_argument("--wait", action="store_true", help="wait until the run has finished")
        trigger.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
        add("pause", "pause a DAG: no new runs, and its running runs schedule no more tasks")
        add("unpause", "unpause a DAG")
        clear = add("clear", "clear task instances of a run so they run again", CLEAR_HELP)
        clear.add_argument("--run-id", "-r", required=True, help="the run to clear")
        clear.add_argument("--task-regex", "-t", help="only tasks whose task_id matches this regex")
        clear.add_argument("--downstream", "-d", action="store_true", help="also their downstream tasks")
        clear.add_argument("--upstream", "-u", action="store_true", help="also their upstream tasks")
        clear.add_argument("--only-failed", "-f", action="store_true", help="only failed task instances")
        clear.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
        backfill = add("backfill", "create a scheduler-managed backfill of a DAG", BACKFILL_HELP)
        backfill.add_argument("--start", "--from-date", required=True, help="first logical date (ISO 8601)")
        backfill.add_argument("--end", "--to-date", required=True, help="last logical date (ISO 8601)")
        backfill.add_argument("--reverse", "--run-backwards", action="store_true", help="latest dates first")
        backfill.add_argument("--max-active-runs", type=int, help="runs at once (default 10)")
        backfill.add_argument(
            "--reprocess",
            "--reprocess-behavior",
            choices=Backfill.Reprocess.values,
            default=Backfill.Reprocess.NONE,
            help="dates that already have a run: none (skip; default), failed or completed (run again)",
        )
        backfill.add_argument("--conf", "-c", help="the runs' conf, a JSON object")
        backfill.add_argument(
            "--dry-run", action="store_true", help="print the dates it would consider, create nothing"
        )
        listing = add("backfill-list", "list backfills (of one DAG, or of every DAG)", dag=False)
        listing.add_argument("dag_id", metavar="DAG", nargs="?", help="only this DAG's backfills")
        add("backfill-pause", "pause a DAG's running backfill (its runs already created go on)")
        add("backfill-unpause", "unpause a DAG's paused backfill")
        add("backfill-cancel", "cancel a DAG's backfill: its queued runs fail, its running runs go on")
        versions = add("versions", "list the versions of the tenant's DAG repositories (bundles)", dag=False)
        versions.add_argument("--bundle", metavar="NAME", help="only this bundle")
        rollback = add("rollback", "re-activate an earlier version of a DAG repository", dag=False)
        rollback.add_argument(
            "--bundle", metavar="NAME", default="default", help="the bundle (default: default)"
        )
        rollback.add_argument("--to", metavar="N", type=int, required=True, help="the version number")

    def handle(self, *args: Any, **options: Any) -> None:
        command = options["subcommand"]
        if command == "test":
            self._test(options)
        elif command == "upload":
            self._upload(options)
        else:
            handler = getattr(self, "_" + command.replace("-", "_"))
            try:
                handler(options)
            except DomainError as error:
                raise CommandError(str(error)) from None

    # --- acting for someone on the tenant's DAGs ---------------------------------------------------

    def _context(self, options: dict[str, Any], *, dag: bool = True) -> tuple[Tenant, Actor, Dag | None]:
        """The tenant, who acts (the subcommand's permission checked, per DAG too) and the DAG (or None)."""
        tenant = _tenant(options["tenant"])
        action = ACTIONS[options["subcommand"]]
        actor = command_actor(tenant=tenant, username=options.get("as_user"), action=action)
        found = None
        if dag and options.get("dag_id"):
            found = (
                Dag.objects.for_tenant(tenant)
                .select_related("active_version")
                .filter(dag_id=options["dag_id"])
                .first()
            )
            membership = _membership(tenant, actor)
            if found is None or (membership is not None and not can(membership, "dag.view", found)):
                raise CommandError(f"tenant {tenant.slug!r} has no DAG {options['dag_id']!r}")
            if membership is not None and not can(membership, action, found):
                raise CommandError(f"{actor.label!r} may not do {action!r} on DAG {found.dag_id!r}")
        return tenant, actor, found

    # --- dags list, list-runs ----------------------------------------------------------------------

    def _list(self, options: dict[str, Any]) -> None:
        from tradewind.accounts.grants import filter_granted

        tenant, actor, _ = self._context(options, dag=False)
        dags = (
            Dag.objects.for_tenant(tenant).filter(is_active=True).select_related("bundle", "active_version")
        )
        membership = _membership(tenant, actor)
        if membership is not None:
            dags = filter_granted(membership, dags, "dag.view")
        rows = [
            (
                dag.dag_id,
                "paused" if dag.is_paused else "active",
                _schedule_summary(dag.schedule),
                dag.bundle.name,
                f"v{dag.active_version.number}" if dag.active_version else "-",
                dag.owners,
            )
            for dag in dags.order_by("dag_id")
        ]
        if not rows:
            self.stdout.write(f"Tenant {tenant.slug} has no DAGs.")
            return
        self._table(("dag_id", "is_paused", "schedule", "bundle", "version", "owners"), rows)

    def _list_runs(self, options: dict[str, Any]) -> None:
        _, _, dag = self._context(options)
        runs = DagRun.objects.filter(dag=dag).order_by("-run_after", "-pk")
        if options["state"]:
            runs = runs.filter(state=options["state"])
        rows = [
            (
                run.run_id,
                run.run_type,
                run.state,
                _when(run.logical_date),
                _when(run.start_date),
                _when(run.end_date),
            )
            for run in runs[: max(options["limit"], 0)]
        ]
        if not rows:
            self.stdout.write(f"DAG {dag.dag_id} has no runs.")
            return
        self._table(("run_id", "run_type", "state", "logical_date", "start_date", "end_date"), rows)

    # --- dags trigger, pause, unpause --------------------------------------------------------------

    def _trigger(self, options: dict[str, Any]) -> None:
        tenant, actor, dag = self._context(options)
        logical_date = _date(options["logical_date"], "--logical-date") if options["logical_date"] else None
        run = services.trigger_run(
            tenant=tenant,
            actor=actor,
            dag=dag,
            conf=_parse_conf(options["conf"]),
            logical_date=logical_date,
            run_id=options["run_id"],
            note=options["note"],
        )
        self.stdout.write(
            f"Created run {run.run_id} of DAG {dag.dag_id} (state {run.state}, "
            f"logical date {_when(run.logical_date)})."
        )
        if dag.is_paused:
            self.stdout.write(
                self.style.WARNING(f"DAG {dag.dag_id} is paused: the run waits until it is unpaused.")
            )
        if options["wait"]:
            self._wait(tenant, run, options["timeout"])

    def _wait(self, tenant: Tenant, run: DagRun, timeout: float | None) -> None:
        """Wait for the run to finish, which a scheduler running elsewhere brings about; hint when none does."""
        started = time.monotonic()
        hinted = False
        while True:
            try:
                run.refresh_from_db(fields=["state", "end_date", "failure_reason"])
            except DagRun.DoesNotExist:
                raise CommandError(f"run {run.run_id} was deleted while waiting", returncode=1) from None
            if run.state in RUN_FINISHED:
                break
            waited = time.monotonic() - started
            stuck = run.state == DagRunState.QUEUED and not _scheduler_holds(tenant)
            if timeout is not None and waited >= timeout:
                hint = f" {_no_scheduler_hint(tenant)}" if stuck else ""
                raise CommandError(
                    f"timed out after {timeout:g} s: run {run.run_id} is still {run.state}.{hint}",
                    returncode=1,
                )
            if stuck and not hinted and waited >= HINT_AFTER_SECONDS:
                self.stderr.write(
                    f"Run {run.run_id} is still queued. {_no_scheduler_hint(tenant)} Waiting..."
                )
                hinted = True
            time.sleep(POLL_SECONDS)
        if run.state == DagRunState.SUCCESS:
            self.stdout.write(self.style.SUCCESS(f"Run {run.run_id} finished: success"))
            return
        reason = f" ({run.failure_reason})" if run.failure_reason else ""
        raise CommandError(f"run {run.run_id} finished: {run.state}{reason}", returncode=1)

    def _pause(self, options: dict[str, Any]) -> None:
        self._set_paused(options, True)

    def _unpause(self, options: dict[str, Any]) -> None:
        self._set_paused(options, False)

    def _set_paused(self, options: dict[str, Any], is_paused: bool) -> None:
        tenant, actor, dag = self._context(options)
        dag = services.set_paused(tenant=tenant, actor=actor, dag=dag, is_paused=is_paused)
        self.stdout.write(f"DAG {dag.dag_id} is {'paused' if is_paused else 'unpaused'}.")

    # --- dags clear --------------------------------------------------------------------------------

    def _clear(self, options: dict[str, Any]) -> None:
        tenant, actor, dag = self._context(options)
        run = queries.get_dag_run(tenant=tenant, dag_id=dag.dag_id, run_id=options["run_id"])
        task_ids = None
        if options["task_regex"]:
            try:
                pattern = re.compile(options["task_regex"])
            except re.error as error:
                raise CommandError(f"--task-regex is not a valid regular expression: {error}") from None
            spec = services.get_dag_spec(run.dag_version)
            task_ids = sorted(t for t in spec.tasks if pattern.search(t))
            if not task_ids:
                raise CommandError(f"no task of DAG {dag.dag_id} matches {options['task_regex']!r}")
        kwargs = {
            "tenant": tenant,
            "actor": actor,
            "run": run,
            "task_ids": task_ids,
            "downstream": options["downstream"],
            "upstream": options["upstream"],
            "only_failed": options["only_failed"],
        }
        preview = services.clear_task_instances(**kwargs, dry_run=True)
        if not preview:
            self.stdout.write("Nothing to clear.")
            return
        self.stdout.write(f"Task instances of run {run.run_id} to clear ({len(preview)}):")
        for ti in preview:
            self.stdout.write(f"  {queries.ti_label(ti.task_id, ti.map_index)}  {ti.state}")
        if not options["yes"]:
            if not sys.stdin.isatty():
                raise CommandError("not clearing without confirmation: add --yes (no terminal to ask on)")
            if input("Clear them? [y/n] ").strip().lower() not in ("y", "yes"):
                self.stdout.write("Cancelled, nothing was cleared.")
                return
        cleared = services.clear_task_instances(**kwargs)
        run.refresh_from_db(fields=["state"])
        self.stdout.write(f"Cleared {len(cleared)} task instances; run {run.run_id} is {run.state}.")

    # --- dags backfill and friends -----------------------------------------------------------------

    def _backfill(self, options: dict[str, Any]) -> None:
        tenant, actor, dag = self._context(options)
        start, end = _date(options["start"], "--start"), _date(options["end"], "--end")
        if options["dry_run"]:
            self._backfill_dry_run(dag, start, end, options)
            return
        backfill = services.create_backfill(
            tenant=tenant,
            actor=actor,
            dag=dag,
            start=start,
            end=end,
            reverse=options["reverse"],
            max_active_runs=options["max_active_runs"],
            reprocess=options["reprocess"],
            conf=_parse_conf(options["conf"]),
        )
        self.stdout.write(
            f"Created backfill {backfill.pk} of DAG {dag.dag_id}: {len(backfill.planned)} runs from "
            f"{backfill.planned[0]['logical_date']} to {backfill.planned[-1]['logical_date']}, at most "
            f"{backfill.max_active_runs} at once, reprocess {backfill.reprocess_behavior}. The scheduler "
            "creates its runs over time."
        )
        if dag.is_paused:
            self.stdout.write(
                self.style.WARNING(f"DAG {dag.dag_id} is paused: unpause it for the backfill to run.")
            )

    def _backfill_dry_run(self, dag: Dag, start: datetime, end: datetime, options: dict[str, Any]) -> None:
        if dag.active_version is None:
            raise CommandError(f"DAG {dag.dag_id!r} has no active version to backfill")
        planned = services.plan_backfill(dag.active_version, start, end, reverse=options["reverse"])
        existing = dict(
            DagRun.objects.filter(dag=dag, logical_date__isnull=False).values_list("logical_date", "state")
        )
        self.stdout.write(f"Dry run: {len(planned)} dates between {start.isoformat()} and {end.isoformat()}:")
        for entry in planned:
            state = existing.get(datetime.fromisoformat(entry["logical_date"]))
            if state is None:
                verdict = "create"
            else:
                reason = services.backfill_skip_reason(state, options["reprocess"])
                verdict = f"skip: {reason} ({state})" if reason else f"reprocess ({state})"
            self.stdout.write(f"  {entry['logical_date']}  {verdict}")

    def _backfill_list(self, options: dict[str, Any]) -> None:
        tenant, _, dag = self._context(options)
        backfills = Backfill.objects.for_tenant(tenant).select_related("dag")
        if dag is not None:
            backfills = backfills.filter(dag=dag)
        rows = [
            (
                str(b.pk),
                b.dag.dag_id,
                _when(b.from_date),
                _when(b.to_date),
                "completed" if b.completed_at else "paused" if b.is_paused else "running",
                f"{b.next_index}/{len(b.planned)}",
                str(len(b.skipped)),
                b.reprocess_behavior,
                str(b.max_active_runs),
            )
            for b in backfills.order_by("-created_at", "-pk")
        ]
        if not rows:
            self.stdout.write("No backfills.")
            return
        self._table(
            (
                "id",
                "dag_id",
                "from_date",
                "to_date",
                "state",
                "handled",
                "skipped",
                "reprocess",
                "max_active_runs",
            ),
            rows,
        )

    def _backfill_pause(self, options: dict[str, Any]) -> None:
        tenant, actor, dag = self._context(options)
        backfill = services.set_backfill_paused(
            tenant=tenant, actor=actor, backfill=_open_backfill(dag), is_paused=True
        )
        self.stdout.write(f"Backfill {backfill.pk} of DAG {dag.dag_id} is paused.")

    def _backfill_unpause(self, options: dict[str, Any]) -> None:
        tenant, actor, dag = self._context(options)
        backfill = services.set_backfill_paused(
            tenant=tenant, actor=actor, backfill=_open_backfill(dag), is_paused=False
        )
        self.stdout.write(f"Backfill {backfill.pk} of DAG {dag.dag_id} is unpaused.")

    def _backfill_cancel(self, options: dict[str, Any]) -> None:
        tenant, actor, dag = self._context(options)
        backfill = services.cancel_backfill(tenant=tenant, actor=actor, backfill=_open_backfill(dag))
        self.stdout.write(
            f"Backfill {backfill.pk} of DAG {dag.dag_id} is cancelled: its queued runs failed, its running "
            "runs go on."
        )

    # --- dags versions, rollback -------------------------------------------------------------------

    def _versions(self, options: dict[str, Any]) -> None:
        tenant, _, _ = self._context(options, dag=False)
        versions = BundleVersion.objects.for_tenant(tenant).select_related("bundle")
        if options["bundle"]:
            if not Bundle.objects.for_tenant(tenant).filter(name=options["bundle"]).exists():
                raise CommandError(f"tenant {tenant.slug!r} has no bundle {options['bundle']!r}")
            versions = versions.filter(bundle__name=options["bundle"])
        rows = [
            (
                v.bundle.name,
                str(v.number),
                v.state,
                _when(v.created_at),
                str(len(v.dags)),
                str(v.import_error_count),
                v.content_hash[:12],
            )
            for v in versions.order_by("bundle__name", "-number")
        ]
        if not rows:
            self.stdout.write(f"Tenant {tenant.slug} has no DAG repository versions.")
            return
        self._table(("bundle", "version", "state", "uploaded", "dags", "import_errors", "hash"), rows)

    def _rollback(self, options: dict[str, Any]) -> None:
        from scheduler.bundles import rollback

        tenant, actor, _ = self._context(options, dag=False)
        bundle = Bundle.objects.for_tenant(tenant).filter(name=options["bundle"]).first()
        if bundle is None:
            raise CommandError(f"tenant {tenant.slug!r} has no bundle {options['bundle']!r}")
        version = rollback(tenant=tenant, actor=actor, bundle=bundle, number=options["to"])
        self.stdout.write(
            f"Bundle {bundle.name} of tenant {tenant.slug} is back at version {version.number} "
            f"(DAGs: {', '.join(sorted(version.dags)) or 'none'})."
        )

    def _table(self, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
        widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
        for row in (header, *rows):
            self.stdout.write(
                "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            )

    # --- dags test ----------------------------------------------------------------------------------

    def _test(self, options: dict[str, Any]) -> None:
        path = Path(options["path"])
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        try:
            logical_date = (
                dagtest.parse_logical_date(options["logical_date"]) if options["logical_date"] else None
            )
        except ValueError as error:
            raise CommandError(f"--logical-date: {error}") from None
        conf = _parse_conf(options["conf"])
        as_json = options["json"]
        # In --json mode stdout carries the document and nothing else: anything else printing goes to stderr.
        quiet = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
        with quiet:
            _migrate_embedded_database()
            secrets_tenant = _tenant(options["tenant"]) if options["tenant"] else None
            report = dagtest.run_dags_test(
                path=path,
                dag_id=options["dag_id"],
                logical_date=logical_date,
                conf=conf,
                secrets_tenant=secrets_tenant,
            )
        if as_json:
            self.stdout.write(json.dumps(report.document, indent=2, sort_keys=False))
            for problem in report.problems:
                self.stderr.write(problem)
        else:
            self._print_report(report)
        if not report.succeeded:
            raise CommandError("dags test: not every run succeeded", returncode=1)

    def _print_report(self, report: dagtest.DagTestReport) -> None:
        document = report.document
        if document["import_errors"]:
            self.stdout.write(self.style.ERROR("Import errors:"))
            for file, message in document["import_errors"].items():
                self.stdout.write(f"  {file}:")
                for line in message.splitlines():
                    self.stdout.write(f"    {line}")
            self.stdout.write("")
        for entry in document["dags"]:
            style = self.style.SUCCESS if entry["state"] == "success" else self.style.ERROR
            self.stdout.write(f"DAG {entry['dag_id']}  run {entry['run_id']}  " + style(entry["state"]))
            width = max((len(key) for key in entry["tasks"]), default=0)
            for key, state in entry["tasks"].items():
                self.stdout.write(f"  {key.ljust(width)}  {state}")
            self.stdout.write("")
        for problem in report.problems:
            self.stdout.write(self.style.ERROR(problem))
        for failed in report.task_problems:
            self.stdout.write(
                self.style.ERROR(f"{failed.dag_id}.{failed.task} {failed.state}: {failed.error}")
            )
            if failed.log_tail:
                self.stdout.write("  last lines of its log:")
                for line in failed.log_tail.splitlines():
                    self.stdout.write(f"    | {line}")
            self.stdout.write("")
        runs = document["dags"]
        ok = sum(1 for entry in runs if entry["state"] == "success")
        summary = f"{ok} of {len(runs)} runs succeeded; {len(document['import_errors'])} import errors"
        self.stdout.write((self.style.SUCCESS if report.succeeded else self.style.ERROR)(summary))

    # --- dags upload --------------------------------------------------------------------------------

    def _upload(self, options: dict[str, Any]) -> None:
        from scheduler.bundles import upload_bundle

        path = Path(options["path"])
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        tenant = _tenant(options["tenant"])
        validate_only = options["validate_only"]
        try:
            result = upload_bundle(
                tenant=tenant,
                actor=Actor.system("manage.py dags upload"),
                source=path,
                bundle_name=options["bundle"],
                validate_only=validate_only,
            )
        except DomainError as error:
            raise CommandError(f"upload rejected: {error}") from None
        version = result.version
        self.stdout.write(f"Uploaded {path} to tenant {tenant.slug} as {version}.")
        self.stdout.write(f"DAGs found ({len(result.dags)}): {', '.join(sorted(result.dags)) or 'none'}")
        if result.import_errors:
            self.stdout.write(self.style.ERROR(f"Import errors ({len(result.import_errors)}):"))
            for file, message in sorted(result.import_errors.items()):
                self.stdout.write(f"  {file}:")
                for line in message.splitlines():
                    self.stdout.write(f"    {line}")
        else:
            self.stdout.write("Import errors: none")
        self.stdout.write("Activated: yes" if result.activated else "Activated: no")
        if validate_only and result.import_errors:
            raise CommandError("validation failed: some files have import errors", returncode=1)


def _parse_conf(text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        conf = json.loads(text)
    except ValueError as error:
        raise CommandError(f"--conf is not valid JSON: {error}") from None
    if not isinstance(conf, dict):
        raise CommandError("--conf must be a JSON object")
    return conf


def _tenant(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"no tenant with slug {slug!r}")
    return tenant


def _membership(tenant: Tenant, actor: Actor) -> Membership | None:
    """The acting member's membership (None for the system, which is not limited by roles or grants)."""
    if actor.is_system:
        return None
    return Membership.objects.for_tenant(tenant).select_related("user").get(user_id=actor.user_id)


def _open_backfill(dag: Dag) -> Backfill:
    backfill = Backfill.objects.filter(dag=dag, completed_at__isnull=True).first()
    if backfill is None:
        raise CommandError(f"DAG {dag.dag_id!r} has no backfill that is still running")
    return backfill


def _date(text: str, flag: str) -> datetime:
    try:
        return dagtest.parse_logical_date(text)
    except ValueError as error:
        raise CommandError(f"{flag}: {error}") from None


def _when(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "-"


def _schedule_summary(schedule: Any) -> str:
    if not isinstance(schedule, dict):
        return "None"
    return str(schedule.get("summary") or schedule.get("expression") or schedule.get("type") or "None")


def _scheduler_holds(tenant: Tenant) -> bool:
    """Whether a `manage.py scheduler` process holds the tenant's lease right now."""
    return SchedulerLease.objects.filter(tenant=tenant, expires_at__gte=timezone.now()).exists()


def _no_scheduler_hint(tenant: Tenant) -> str:
    return (
        f"No scheduler holds tenant {tenant.slug}'s lease: unless `manage.py standalone` is running, start "
        "`manage.py scheduler` so the run can start."
    )


def _migrate_embedded_database() -> None:
    """On the embedded SQLite database `dags test` works on a fresh checkout: bring the schema up to date."""
    if connection.vendor == "sqlite":
        call_command("migrate", verbosity=0, interactive=False)
