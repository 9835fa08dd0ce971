"""Appending to the audit log. Every audited action calls `record()` inside its own transaction."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any

from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from tradewind.accounts.actors import Actor
from tradewind.audit.models import PLATFORM_CHAIN, AuditChain, AuditEntry
from tradewind.secrets.masking import Masker

if TYPE_CHECKING:
    from tenants.models import Tenant

# The fields a hash covers, in a fixed order; `hash` itself is the only field left out.
HASHED_FIELDS = (
    "chain",
    "seq",
    "tenant_id",
    "tenant_slug",
    "created_at",
    "actor_kind",
    "actor_user_id",
    "actor_token_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "before",
    "after",
    "detail",
    "ip",
    "user_agent",
    "request_id",
    "prev_hash",
)


def entry_digest(values: dict[str, Any]) -> str:
    """The sha256 hex digest of an entry's hashed fields (canonical JSON); `verify` recomputes it."""
    document = {name: values[name] for name in HASHED_FIELDS}
    created_at = document["created_at"]
    document["created_at"] = created_at.isoformat() if hasattr(created_at, "isoformat") else created_at
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    *,
    tenant: Tenant | None,
    actor: Actor,
    action: str,
    obj: models.Model | None = None,
    before: dict | None = None,
    after: dict | None = None,
    request: HttpRequest | None = None,
    detail: dict | None = None,
    masker: Masker | None = None,
) -> AuditEntry:
    """Append one entry to the tenant's chain (the platform chain when `tenant` is None) and return it.

    `before`, `after` and `detail` are masked (sensitive keys, and secrets `masker` knows) before they are
    stored. Call it inside the transaction of the change it records: the entry commits or rolls back with
    it. Appends to one chain are serialised by a lock on the chain's head row until that commit.
    """
    masker = masker or Masker()
    with transaction.atomic():
        chain_id = tenant.pk if tenant is not None else PLATFORM_CHAIN
        AuditChain.objects.get_or_create(chain=chain_id)
        head = AuditChain.objects.select_for_update().get(chain=chain_id)
        values: dict[str, Any] = {
            "chain": chain_id,
            "seq": head.last_seq + 1,
            "tenant_id": tenant.pk if tenant is not None else None,
            "tenant_slug": tenant.slug if tenant is not None else "",
            "created_at": timezone.now(),
            "actor_kind": actor.kind,
            "actor_user_id": actor.user_id,
            "actor_token_id": actor.token_id,
            "actor_label": masker.mask(actor.label)[:300],
            "action": str(action),
            "object_type": obj._meta.label_lower if obj is not None else "",
            "object_id": str(obj.pk) if obj is not None and obj.pk is not None else "",
            "object_repr": masker.mask(str(obj))[:300] if obj is not None else "",
            "before": _clean(before, masker),
            "after": _clean(after, masker),
            "detail": _clean(detail, masker),
            **_request_fields(request),
            "prev_hash": head.last_hash,
        }
        entry = AuditEntry(**values, hash=entry_digest(values))
        entry.save()
        head.last_seq = entry.seq
        head.last_hash = entry.hash
        head.save(update_fields=["last_seq", "last_hash"])
    return entry


def request_id(request: HttpRequest) -> str:
    """The request's id: the proxy's X-Request-ID when it sent one, else one made up for this request."""
    existing = getattr(request, "request_id", None)
    if existing:
        return existing
    header = request.META.get("HTTP_X_REQUEST_ID", "")[:64]
    request.request_id = header or uuid.uuid4().hex
    return request.request_id


def _request_fields(request: HttpRequest | None) -> dict[str, str]:
    if request is None:
        return {"ip": "", "user_agent": "", "request_id": ""}
    return {
        "ip": request.META.get("REMOTE_ADDR", "")[:45],
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:500],
        "request_id": request_id(request),
    }


def _clean(value: dict | None, masker: Masker) -> Any:
    """Masked and made plain JSON, so what is hashed is exactly what the database gives back."""
    if value is None:
        return None
    return json.loads(json.dumps(masker.mask_structure(value), default=str))
