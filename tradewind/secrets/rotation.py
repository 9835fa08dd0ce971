"""Key rotation while the system runs.

After a new platform key is put first in TRADEWIND_FERNET_KEYS (or the Vault transit key was rotated),
`rotate_tenant_keys` for each tenant: (1) re-wraps every data key with the current wrapping key, (2) makes
a fresh data key the active one, (3) re-encrypts every value with it row by row, (4) deletes the old data
keys once no row uses them. Readers fetch a row together with its data key, so every value stays readable
at every moment; afterwards the old platform key can be removed from the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet
from django.db import transaction
from django.db.models import RestrictedError
from django.utils import timezone

from tradewind.accounts.actors import Actor
from tradewind.audit.actions import AuditAction
from tradewind.audit.services import record
from tradewind.secrets import keys, vault
from tradewind.secrets.models import Connection, DataKey, Variable

if TYPE_CHECKING:
    from tenants.models import Tenant

BATCH = 200


@dataclass
class RotationResult:
    """What rotation did for one tenant."""

    rewrapped: int
    reencrypted: int
    retired: int


def rewrap(data_key: DataKey) -> None:
    """Wrap `data_key` with the configured wrapper's current key (the key material does not change)."""
    wrapper = keys.configured_wrapper()
    if wrapper == data_key.wrapper == DataKey.Wrapper.VAULT:
        wrapped = vault.transit_rewrap(data_key.wrapped_key)
    elif wrapper == data_key.wrapper == DataKey.Wrapper.FERNET:
        wrapped = keys.platform_fernet().rotate(data_key.wrapped_key.encode()).decode()
    else:  # switching wrappers (Fernet to Vault or back): unwrap with the old, wrap with the new
        wrapped = keys.wrap(keys.unwrap(data_key), wrapper)
    DataKey.objects.filter(pk=data_key.pk).update(
        wrapped_key=wrapped, wrapper=wrapper, rewrapped_at=timezone.now()
    )


def _new_active_key(tenant: Tenant) -> DataKey:
    wrapper = keys.configured_wrapper()
    wrapped = keys.wrap(Fernet.generate_key(), wrapper)
    with transaction.atomic():
        DataKey.objects.for_tenant(tenant).filter(is_active=True).update(is_active=False)
        return DataKey.objects.create(tenant=tenant, wrapped_key=wrapped, wrapper=wrapper)


def _reencrypt(model: type[Variable] | type[Connection], tenant: Tenant, new_key: DataKey) -> int:
    fields = ["encrypted_value"] if model is Variable else ["encrypted_password", "encrypted_extra"]
    count = 0
    while True:
        with transaction.atomic():
            rows = list(
                model.objects.for_tenant(tenant)
                .exclude(data_key=new_key)
                .select_related("data_key")
                .select_for_update(of=("self",))
                .order_by("pk")[:BATCH]
            )
            if not rows:
                return count
            for row in rows:
                for name in fields:
                    setattr(row, name, keys.encrypt(new_key, keys.decrypt(row.data_key, getattr(row, name))))
                row.data_key = new_key
                row.save(update_fields=[*fields, "data_key"])
            count += len(rows)


def rotate_tenant_keys(*, tenant: Tenant, actor: Actor) -> RotationResult:
    """Rotate one tenant's keys as described above; safe to run again after an interruption."""
    old_keys = list(DataKey.objects.for_tenant(tenant))
    for data_key in old_keys:
        rewrap(data_key)
    if not old_keys:
        return RotationResult(rewrapped=0, reencrypted=0, retired=0)
    new_key = _new_active_key(tenant)
    reencrypted = _reencrypt(Variable, tenant, new_key) + _reencrypt(Connection, tenant, new_key)
    retired = 0
    for data_key in DataKey.objects.for_tenant(tenant).exclude(pk=new_key.pk):
        try:
            data_key.delete()
            retired += 1
        except RestrictedError:  # a write with the old key raced us; the next rotation retires it
            pass
    with transaction.atomic():
        record(
            tenant=tenant,
            actor=actor,
            action=AuditAction.KEY_ROTATED,
            detail={
                "rewrapped": len(old_keys),
                "reencrypted": reencrypted,
                "retired": retired,
                "wrapper": new_key.wrapper,
            },
        )
    return RotationResult(rewrapped=len(old_keys), reencrypted=reencrypted, retired=retired)
