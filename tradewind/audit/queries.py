"""Reading the audit log: filtered entries, and their export as CSV or JSON lines."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from typing import IO, Any

from django.db.models import Q, QuerySet

from tradewind.audit.models import AuditEntry
from tradewind.audit.services import HASHED_FIELDS

# What an export shows of an entry: everything the hash covers (the tenant by slug), its id and hash.
EXPORT_FIELDS = ("id", *(field for field in HASHED_FIELDS if field != "tenant_id"), "hash")


def list_entries(
    *,
    chain: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
) -> QuerySet[AuditEntry]:
    """Entries in chain order, filtered: `since` inclusive, `until` exclusive; `actor` matches a username
    or label (case-insensitive substring) or "user:<id>"/"token:<id>"; `action` is exact, or a prefix
    when it ends with "." ("run." = every run action); `object_type` is an app_label.model."""
    qs = AuditEntry.objects.all()
    if chain is not None:
        qs = qs.filter(chain=chain)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    if actor:
        kind, _, ident = actor.partition(":")
        if kind in {"user", "token"} and ident.isdigit():
            qs = qs.filter(**{f"actor_{kind}_id": int(ident)})
        else:
            qs = qs.filter(Q(actor_label__icontains=actor) | Q(actor_kind=actor))
    if action:
        qs = qs.filter(action__startswith=action) if action.endswith(".") else qs.filter(action=action)
    if object_type:
        qs = qs.filter(object_type=object_type.lower())
    if object_id:
        qs = qs.filter(object_id=str(object_id))
    return qs.order_by("chain", "seq")


def entry_row(entry: AuditEntry) -> dict[str, Any]:
    """An entry as a plain JSON-able dict with the export's fields."""
    row = {name: getattr(entry, name) for name in EXPORT_FIELDS}
    row["created_at"] = entry.created_at.isoformat()
    return row


def write_jsonl(entries: QuerySet[AuditEntry], stream: IO[str]) -> int:
    """One JSON object per line; returns how many entries were written."""
    count = 0
    for entry in entries.iterator(chunk_size=2000):
        stream.write(json.dumps(entry_row(entry), ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count


def write_csv(entries: QuerySet[AuditEntry], stream: IO[str]) -> int:
    """CSV with a header row; JSON columns (before, after, detail) hold JSON text."""
    writer = csv.DictWriter(stream, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    count = 0
    for entry in entries.iterator(chunk_size=2000):
        row = entry_row(entry)
        for name in ("before", "after", "detail"):
            row[name] = "" if row[name] is None else json.dumps(row[name], ensure_ascii=False, sort_keys=True)
        writer.writerow(row)
        count += 1
    return count
