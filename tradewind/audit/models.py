"""The audit log: append-only entries hash-chained per tenant, the chain heads, and signed checkpoints.

Nothing in the ORM updates or deletes these rows (the model and queryset refuse), and on PostgreSQL a
trigger rejects UPDATE and DELETE outright; the only deletion is retention archiving, which the trigger
allows just for entries already covered by a signed checkpoint (see tradewind.audit.retention).
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models

GENESIS_HASH = "0" * 64
PLATFORM_CHAIN = 0  # events outside any tenant (failed logins, admin changes to tenants) chain here


class AppendOnlyError(Exception):
    """Someone tried to change or remove an audit row through the ORM."""


class AppendOnlyQuerySet(models.QuerySet):
    """Reads only: bulk update and delete would break the chain, so they are refused."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("the audit log is append-only")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("the audit log is append-only")

    def for_tenant(self, tenant: Any) -> AppendOnlyQuerySet:
        return self.filter(chain=getattr(tenant, "pk", tenant))


class AppendOnlyModel(models.Model):
    """Rows that can be inserted once and never saved again or deleted."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only")


class AuditChain(models.Model):
    """The head of one chain: the last sequence number and hash, locked while an entry is appended.

    The head also lets `verify` notice entries cut off the end of a chain.
    """

    chain = models.BigIntegerField(primary_key=True)  # the tenant's id; 0 for the platform chain
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"chain {self.chain} at #{self.last_seq}"


class AuditEntry(AppendOnlyModel):
    """One recorded action. `hash` covers every other field, including the previous entry's hash."""

    chain = models.BigIntegerField()
    seq = models.BigIntegerField()
    # No database constraint and no cascade: the log outlives the tenants, users and tokens it names.
    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    tenant_slug = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField()
    actor_kind = models.CharField(max_length=16)
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    actor_token_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=300, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=100, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    detail = models.JSONField(null=True, blank=True)
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["chain", "seq"]
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="auditentry_unique_seq")]
        indexes = [
            models.Index(fields=["chain", "created_at"], name="auditentry_chain_time"),
            models.Index(fields=["action"], name="auditentry_action"),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"#{self.chain}/{self.seq} {self.action} by {self.actor_label or self.actor_kind}"


class AuditCheckpoint(AppendOnlyModel):
    """Entries 1..through_seq of a chain were archived; the signature vouches for where the chain resumes.

    `signature` is an HMAC (settings.TRADEWIND_AUDIT_SIGNING_KEY) over every other field, so a forged
    checkpoint hiding removed entries is detected.
    """

    chain = models.BigIntegerField()
    through_seq = models.BigIntegerField()
    through_hash = models.CharField(max_length=64)
    first_seq = models.BigIntegerField()
    entry_count = models.PositiveIntegerField()
    archive_name = models.CharField(max_length=500)
    archive_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    signature = models.CharField(max_length=64)

    class Meta:
        ordering = ["chain", "through_seq"]
        constraints = [
            models.UniqueConstraint(fields=["chain", "through_seq"], name="auditcheckpoint_unique_seq")
        ]

    def __str__(self) -> str:
        return f"checkpoint #{self.chain} through {self.through_seq}"
