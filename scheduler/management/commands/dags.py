"""`manage.py dags test` and `manage.py dags upload`: DAG repositories from the command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from scheduler import dagtest
from tenants.models import Tenant
from tradewind.accounts.actors import Actor
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


class Command(BaseCommand):
    help = "DAG repositories: `dags test` runs DAG files once for real; `dags upload` uploads a repository."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="subcommand", metavar="{test,upload}", required=True)
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

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "test":
            self._test(options)
        else:
            self._upload(options)

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


def _migrate_embedded_database() -> None:
    """On the embedded SQLite database `dags test` works on a fresh checkout: bring the schema up to date."""
    if connection.vendor == "sqlite":
        call_command("migrate", verbosity=0, interactive=False)
