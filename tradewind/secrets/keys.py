"""Per-tenant data keys: created on first use, wrapped by the platform keys or Vault transit, cached
unwrapped in memory. The only module that turns ciphertext back into secrets.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import IntegrityError, transaction

from tradewind.secrets import vault
from tradewind.secrets.models import DataKey

if TYPE_CHECKING:
    from tenants.models import Tenant


class UndecryptableSecret(Exception):
    """A stored value could not be decrypted: the key that wrapped its data key is no longer configured."""


def platform_fernet() -> MultiFernet:
    """settings.FERNET_KEYS as a MultiFernet: the first key encrypts, every key decrypts."""
    return MultiFernet(
        [Fernet(key.encode() if isinstance(key, str) else key) for key in settings.FERNET_KEYS]
    )


def configured_wrapper() -> str:
    """How new data keys are wrapped: "vault" (transit) or "fernet" (settings.TRADEWIND_KEY_WRAPPER)."""
    return settings.TRADEWIND_KEY_WRAPPER


def wrap(raw_key: bytes, wrapper: str) -> str:
    """The data key encrypted for storage by `wrapper`."""
    if wrapper == DataKey.Wrapper.VAULT:
        return vault.transit_wrap(raw_key)
    return platform_fernet().encrypt(raw_key).decode()


def unwrap(data_key: DataKey) -> bytes:
    """The data key in clear (raises UndecryptableSecret when its wrapping key is gone)."""
    if data_key.wrapper == DataKey.Wrapper.VAULT:
        return vault.transit_unwrap(data_key.wrapped_key)
    try:
        return platform_fernet().decrypt(data_key.wrapped_key.encode())
    except InvalidToken:
        raise UndecryptableSecret(
            f"data key {data_key.pk} of tenant {data_key.tenant_id} was wrapped by a key that is not in "
            "TRADEWIND_FERNET_KEYS"
        ) from None


_fernets: dict[tuple[int, str], Fernet] = {}
_fernets_lock = threading.Lock()


def fernet_for(data_key: DataKey) -> Fernet:
    """A Fernet for `data_key`; cached per (key, wrapping) so a re-wrap is picked up by every process."""
    cache_key = (data_key.pk, data_key.wrapped_key)
    with _fernets_lock:
        cached = _fernets.get(cache_key)
    if cached is None:
        cached = Fernet(unwrap(data_key))
        with _fernets_lock:
            _fernets[cache_key] = cached
    return cached


def active_data_key(tenant: Tenant) -> DataKey:
    """The tenant's active data key, created (and wrapped by the configured wrapper) on first use."""
    key = DataKey.objects.for_tenant(tenant).filter(is_active=True).first()
    if key is not None:
        return key
    wrapper = configured_wrapper()
    wrapped = wrap(Fernet.generate_key(), wrapper)
    try:
        with transaction.atomic():
            return DataKey.objects.create(tenant=tenant, wrapped_key=wrapped, wrapper=wrapper)
    except IntegrityError:  # someone else created it first: use theirs
        return DataKey.objects.for_tenant(tenant).get(is_active=True)


def encrypt(data_key: DataKey, value: str | None) -> str:
    """`value` as a Fernet token made with `data_key`; None and "" are stored as ""."""
    if not value:
        return ""
    return fernet_for(data_key).encrypt(value.encode()).decode()


def decrypt(data_key: DataKey, token: str) -> str | None:
    """The clear value of a token made by `encrypt` with `data_key` ("" gives None)."""
    if not token:
        return None
    try:
        return fernet_for(data_key).decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableSecret(
            f"a value of tenant {data_key.tenant_id} does not match its data key"
        ) from None
