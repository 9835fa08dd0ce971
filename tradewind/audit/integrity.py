"""Checking the audit log: every chain recomputed from its first remaining entry to its head.

A chain is intact when each entry's hash matches its contents, each entry names its predecessor's hash,
sequence numbers have no gaps, ids grow with them (appends are serialised), the head row agrees with
the last entry, and the chain resumes exactly where the last signed checkpoint says archiving stopped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from tradewind.audit.models import GENESIS_HASH, AuditChain, AuditCheckpoint, AuditEntry
from tradewind.audit.services import HASHED_FIELDS, entry_digest

_CHECKPOINT_FIELDS = (
    "chain",
    "through_seq",
    "through_hash",
    "first_seq",
    "entry_count",
    "archive_name",
    "archive_sha256",
    "created_at",
)


@dataclass
class ChainReport:
    """The outcome of verifying one chain; `problem` names the first bad entry when it is not intact."""

    chain: int
    checked: int = 0
    problem: str | None = None
    bad_seq: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


def sign_checkpoint(values: dict[str, Any]) -> str:
    """HMAC-SHA256 of a checkpoint's fields with the audit signing key (default: derived from SECRET_KEY)."""
    document = {name: values[name] for name in _CHECKPOINT_FIELDS}
    created_at = document["created_at"]
    document["created_at"] = created_at.isoformat() if hasattr(created_at, "isoformat") else created_at
    message = json.dumps(document, sort_keys=True, separators=(",", ":"))
    secret = settings.TRADEWIND_AUDIT_SIGNING_KEY or settings.SECRET_KEY
    return salted_hmac("tradewind.audit.checkpoint", message, secret=secret, algorithm="sha256").hexdigest()


def entry_values(entry: AuditEntry) -> dict[str, Any]:
    """The hashed fields of a stored entry, as `entry_digest` expects them."""
    return {name: getattr(entry, name) for name in HASHED_FIELDS}


def _describe(entry: AuditEntry) -> str:
    return f"entry #{entry.seq} (id {entry.pk}, {entry.action} at {entry.created_at.isoformat()})"


def verify_chain(chain: int) -> ChainReport:
    """Verify one chain (a tenant's id, or 0 for the platform chain)."""
    report = ChainReport(chain=chain)
    expected_seq, expected_prev = 1, GENESIS_HASH
    previous_checkpoint = None
    for checkpoint in AuditCheckpoint.objects.filter(chain=chain).order_by("through_seq"):
        values = {name: getattr(checkpoint, name) for name in _CHECKPOINT_FIELDS}
        if not constant_time_compare(sign_checkpoint(values), checkpoint.signature):
            report.problem = f"checkpoint through #{checkpoint.through_seq} has an invalid signature"
            report.bad_seq = checkpoint.through_seq
            return report
        if checkpoint.first_seq != expected_seq or (
            previous_checkpoint is not None and previous_checkpoint.through_hash != expected_prev
        ):
            report.problem = (
                f"checkpoint through #{checkpoint.through_seq} does not continue the previous one"
            )
            report.bad_seq = checkpoint.first_seq
            return report
        _check_archive_file(checkpoint, report)
        expected_seq, expected_prev = checkpoint.through_seq + 1, checkpoint.through_hash
        previous_checkpoint = checkpoint
    last_id = 0
    for entry in AuditEntry.objects.filter(chain=chain).order_by("seq").iterator(chunk_size=2000):
        if entry.seq != expected_seq:
            report.problem = f"entry #{expected_seq} is missing (the next entry is {_describe(entry)}): removed or reordered"
            report.bad_seq = expected_seq
            return report
        if entry_digest(entry_values(entry)) != entry.hash:
            report.problem = f"{_describe(entry)} was modified: its hash does not match its contents"
            report.bad_seq = entry.seq
            return report
        if entry.prev_hash != expected_prev:
            report.problem = (
                f"{_describe(entry)} does not follow entry #{entry.seq - 1}: an earlier entry was altered, "
                "removed or reordered"
            )
            report.bad_seq = entry.seq
            return report
        if entry.pk <= last_id:
            report.problem = f"{_describe(entry)} is out of order: rows were reordered"
            report.bad_seq = entry.seq
            return report
        last_id = entry.pk
        expected_seq, expected_prev = entry.seq + 1, entry.hash
        report.checked += 1
    head = AuditChain.objects.filter(chain=chain).first()
    head_seq, head_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS_HASH)
    last_seq = expected_seq - 1
    if head_seq > last_seq:
        report.problem = f"entries after #{last_seq} were removed (the chain head records #{head_seq})"
        report.bad_seq = last_seq + 1
    elif (head_seq, head_hash) != (last_seq, expected_prev):
        report.problem = f"the chain head does not match entry #{last_seq}: the end of the chain was altered"
        report.bad_seq = last_seq
    return report


def _check_archive_file(checkpoint: AuditCheckpoint, report: ChainReport) -> None:
    path = Path(settings.TRADEWIND_AUDIT_ARCHIVE_DIR) / checkpoint.archive_name
    if not path.exists():
        report.notes.append(
            f"archive {checkpoint.archive_name} is not in the archive directory (not checked)"
        )
        return
    if hashlib.sha256(path.read_bytes()).hexdigest() != checkpoint.archive_sha256:
        report.problem = f"archive {checkpoint.archive_name} does not match its checkpoint"
        report.bad_seq = checkpoint.first_seq


def chains(tenant_id: int | None = None) -> list[int]:
    """Every chain that has entries, checkpoints or a head (or just the given tenant's)."""
    if tenant_id is not None:
        return [tenant_id]
    found = set(AuditChain.objects.values_list("chain", flat=True))
    found |= set(AuditEntry.objects.values_list("chain", flat=True).distinct())
    found |= set(AuditCheckpoint.objects.values_list("chain", flat=True).distinct())
    return sorted(found)
