"""Retention: old entries move to an archive file and a signed checkpoint keeps the chain verifiable."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from tradewind.accounts.actors import Actor
from tradewind.audit.actions import AuditAction
from tradewind.audit.integrity import sign_checkpoint, verify_chain
from tradewind.audit.models import AuditChain, AuditCheckpoint, AuditEntry
from tradewind.audit.queries import entry_row
from tradewind.audit.services import record
from tradewind.errors import Conflict


@dataclass
class ArchiveResult:
    """What one chain's archiving did (`checkpoint` is None when nothing was old enough)."""

    chain: int
    archived: int
    checkpoint: AuditCheckpoint | None
    path: Path | None


def archive_chain(*, chain: int, before: datetime, actor: Actor) -> ArchiveResult:
    """Archive the chain's entries created before `before` (always a prefix of the chain): write them to
    a JSON-lines file in settings.TRADEWIND_AUDIT_ARCHIVE_DIR, add a signed checkpoint naming the last
    archived hash, then delete them (the database trigger allows exactly that). A chain that does not
    verify is not archived (Conflict)."""
    report = verify_chain(chain)
    if not report.ok:
        raise Conflict(f"chain {chain} does not verify, not archiving: {report.problem}")
    with transaction.atomic():
        AuditChain.objects.select_for_update().filter(chain=chain).first()
        old = list(AuditEntry.objects.filter(chain=chain, created_at__lt=before).order_by("seq"))
        if not old:
            return ArchiveResult(chain=chain, archived=0, checkpoint=None, path=None)
        last = old[-1]
        # Everything up to `last` goes, so the remaining chain starts right after the checkpoint.
        old = list(AuditEntry.objects.filter(chain=chain, seq__lte=last.seq).order_by("seq"))
        first = old[0]
        name = f"chain-{chain}/{first.seq:012d}-{last.seq:012d}.jsonl"
        path = Path(settings.TRADEWIND_AUDIT_ARCHIVE_DIR) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        content = "".join(json.dumps(entry_row(e), ensure_ascii=False, sort_keys=True) + "\n" for e in old)
        path.write_text(content, encoding="utf-8")
        values = {
            "chain": chain,
            "through_seq": last.seq,
            "through_hash": last.hash,
            "first_seq": first.seq,
            "entry_count": len(old),
            "archive_name": name,
            "archive_sha256": hashlib.sha256(content.encode()).hexdigest(),
            "created_at": timezone.now(),
        }
        checkpoint = AuditCheckpoint(**values, signature=sign_checkpoint(values))
        checkpoint.save()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL tradewind.audit_archiving = 'on'")
            cursor.execute("DELETE FROM audit_auditentry WHERE chain = %s AND seq <= %s", [chain, last.seq])
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL tradewind.audit_archiving = 'off'")
        from tenants.models import Tenant

        record(
            tenant=Tenant.objects.filter(pk=chain).first() if chain else None,
            actor=actor,
            action=AuditAction.AUDIT_ARCHIVED,
            detail={"first_seq": first.seq, "through_seq": last.seq, "count": len(old), "archive": name},
        )
    return ArchiveResult(chain=chain, archived=len(old), checkpoint=checkpoint, path=path)
