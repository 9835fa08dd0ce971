"""`manage.py audit verify|export|archive`: check, export and archive the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from tenants.models import Tenant
from tradewind.accounts.actors import Actor
from tradewind.audit import integrity, queries, retention
from tradewind.audit.actions import AuditAction
from tradewind.audit.models import PLATFORM_CHAIN
from tradewind.audit.services import record
from tradewind.errors import DomainError


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"not a date or ISO date-time: {value!r}")
        parsed = datetime(day.year, day.month, day.day)
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "The audit log. verify: recompute every hash chain and name the first bad entry (exit 1 when one is "
        "found). export: entries as CSV or JSON lines, filtered. archive: move entries older than the "
        "retention to archive files with a signed checkpoint."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        verify = sub.add_parser("verify", help="verify the hash chains")
        verify.add_argument("--tenant", help="tenant slug (default: every chain)")
        verify.add_argument("--platform", action="store_true", help="only the platform chain (no tenant)")

        export = sub.add_parser("export", help="export entries")
        export.add_argument("--tenant", help="tenant slug")
        export.add_argument("--platform", action="store_true", help="only the platform chain")
        export.add_argument("--format", choices=["csv", "jsonl"], default="jsonl")
        export.add_argument("--output", "-o", help="file to write (default: stdout)")
        export.add_argument("--since", help="ISO date or date-time, inclusive")
        export.add_argument("--until", help="ISO date or date-time, exclusive")
        export.add_argument("--actor", help="username/label substring, or user:<id> / token:<id>")
        export.add_argument("--action", help='an action, or a prefix ending in "." (e.g. "run.")')
        export.add_argument("--object", help="app_label.model[:id], e.g. secrets.variable:12")

        archive = sub.add_parser("archive", help="archive old entries with a signed checkpoint")
        archive.add_argument("--tenant", help="tenant slug (default: every chain)")
        archive.add_argument(
            "--older-than-days",
            type=int,
            help="default: TRADEWIND_AUDIT_RETENTION_DAYS (0 = keep everything)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        chain = self._chain(options)
        try:
            getattr(self, f"_{options['subcommand']}")(chain, options)
        except DomainError as error:
            raise CommandError(str(error)) from error

    def _chain(self, options: dict[str, Any]) -> int | None:
        if options.get("platform"):
            return PLATFORM_CHAIN
        slug = options.get("tenant")
        if not slug:
            return None
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"no tenant with slug {slug!r}")
        return tenant.pk

    def _label(self, chain: int) -> str:
        if chain == PLATFORM_CHAIN:
            return "platform"
        tenant = Tenant.objects.filter(pk=chain).first()
        return f"tenant {tenant.slug}" if tenant else f"deleted tenant #{chain}"

    def _verify(self, chain: int | None, options: dict[str, Any]) -> None:
        failures = []
        for each in integrity.chains(chain):
            report = integrity.verify_chain(each)
            for note in report.notes:
                self.stdout.write(f"{self._label(each)}: note: {note}")
            if report.ok:
                self.stdout.write(f"{self._label(each)}: OK ({report.checked} entries)")
            else:
                failures.append(f"{self._label(each)}: {report.problem}")
                self.stderr.write(f"{self._label(each)}: TAMPERED: {report.problem}")
        if failures:
            raise CommandError(f"the audit log does not verify: {failures[0]}")

    def _export(self, chain: int | None, options: dict[str, Any]) -> None:
        object_type, _, object_id = (options.get("object") or "").partition(":")
        entries = queries.list_entries(
            chain=chain,
            since=_when(options.get("since")),
            until=_when(options.get("until")),
            actor=options.get("actor"),
            action=options.get("action"),
            object_type=object_type or None,
            object_id=object_id or None,
        )
        write = queries.write_csv if options["format"] == "csv" else queries.write_jsonl
        if options.get("output"):
            with open(options["output"], "w", encoding="utf-8", newline="") as stream:
                count = write(entries, stream)
            self.stderr.write(f"Exported {count} entries to {options['output']}.")
        else:
            count = write(entries, self.stdout)
        tenant = Tenant.objects.filter(pk=chain).first() if chain else None
        record(
            tenant=tenant,
            actor=Actor.system("audit export"),
            action=AuditAction.AUDIT_EXPORTED,
            detail={"count": count, "format": options["format"]},
        )

    def _archive(self, chain: int | None, options: dict[str, Any]) -> None:
        days = options.get("older_than_days")
        days = settings.TRADEWIND_AUDIT_RETENTION_DAYS if days is None else days
        if days <= 0:
            self.stdout.write("Retention is 0 (keep everything): nothing archived.")
            return
        cutoff = timezone.now() - timedelta(days=days)
        for each in integrity.chains(chain):
            result = retention.archive_chain(chain=each, before=cutoff, actor=Actor.system("audit archive"))
            if result.archived:
                self.stdout.write(f"{self._label(each)}: archived {result.archived} entries to {result.path}")
            else:
                self.stdout.write(f"{self._label(each)}: nothing older than {days} days")
