"""HashiCorp Vault through hvac: the per-tenant KV v2 secrets backend and transit key wrapping.

Layout in KV v2 (Airflow's Vault backend layout under a per-tenant prefix): variables at
`<prefix>/variables/<key>` holding `{"value": ...}`, connections at `<prefix>/connections/<conn_id>` holding
`{"conn_uri": ...}` or Airflow's connection fields. The prefix is settings.TRADEWIND_VAULT_PATH_PREFIX
with `{tenant}` replaced by the tenant's slug. Reads are cached for TRADEWIND_VAULT_CACHE_TTL seconds.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import hvac
import requests
from django.conf import settings
from hvac import exceptions as hvac_errors

from tradewind.errors import DomainError

if TYPE_CHECKING:
    from tenants.models import Tenant

log = logging.getLogger(__name__)


class SecretsBackendUnavailable(DomainError):
    """Vault did not answer (down, sealed, or refused our token): a clear error instead of a fallback."""

    status_code = 503


def vault_enabled() -> bool:
    """Is a Vault server configured (settings.TRADEWIND_VAULT_URL)?"""
    return bool(settings.TRADEWIND_VAULT_URL)


def vault_client() -> hvac.Client:
    """An hvac client for the configured Vault server and token."""
    if not vault_enabled():
        raise SecretsBackendUnavailable("Vault is not configured (set TRADEWIND_VAULT_URL)")
    return hvac.Client(
        url=settings.TRADEWIND_VAULT_URL,
        token=settings.TRADEWIND_VAULT_TOKEN,
        timeout=settings.TRADEWIND_VAULT_TIMEOUT,
    )


def _unavailable(error: Exception) -> SecretsBackendUnavailable:
    url = settings.TRADEWIND_VAULT_URL
    return SecretsBackendUnavailable(
        f"Vault at {url} is unavailable or refused the request: {type(error).__name__}: {error}"
    )


# Anything but "no such secret" (handled where it is expected) means Vault cannot answer us properly.
_VAULT_DOWN = (requests.exceptions.RequestException, hvac_errors.VaultError)


class _TTLCache:
    """A tiny thread-safe cache whose entries (misses included) expire after the configured TTL."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple, tuple[float, Any]] = {}

    def get(self, key: tuple) -> tuple[bool, Any]:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] < time.monotonic():
                self._items.pop(key, None)
                return False, None
            return True, item[1]

    def put(self, key: tuple, value: Any) -> None:
        ttl = settings.TRADEWIND_VAULT_CACHE_TTL
        if ttl > 0:
            with self._lock:
                self._items[key] = (time.monotonic() + ttl, value)

    def forget(self, key: tuple) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache = _TTLCache()


def clear_cache() -> None:
    """Forget every cached Vault read (tests, and after an operator changed secrets in Vault)."""
    _cache.clear()


def tenant_prefix(tenant: Tenant) -> str:
    """The KV path under which this tenant's secrets live; no tenant can name another's path."""
    return settings.TRADEWIND_VAULT_PATH_PREFIX.format(tenant=tenant.slug).strip("/")


def _safe_name(name: str) -> str:
    if not name or "/" in name or name in {".", ".."}:
        raise DomainError(f"invalid secret name {name!r}")
    return name


def _read(tenant: Tenant, kind: str, name: str) -> dict | None:
    key = (tenant.pk, kind, name)
    hit, value = _cache.get(key)
    if hit:
        return value
    path = f"{tenant_prefix(tenant)}/{kind}/{_safe_name(name)}"
    try:
        response = vault_client().secrets.kv.v2.read_secret_version(
            path=path, mount_point=settings.TRADEWIND_VAULT_KV_MOUNT, raise_on_deleted_version=True
        )
        value = response["data"]["data"]
    except hvac_errors.InvalidPath:
        value = None
    except _VAULT_DOWN as error:
        raise _unavailable(error) from error
    _cache.put(key, value)
    return value


def read_variable(tenant: Tenant, key: str) -> str | None:
    """The tenant's variable from Vault, or None when Vault has no such secret."""
    data = _read(tenant, "variables", key)
    if data is None:
        return None
    value = data.get("value")
    return None if value is None else str(value)


def read_connection(tenant: Tenant, conn_id: str) -> dict | None:
    """The tenant's connection from Vault as Airflow's field dict, or None when Vault has none."""
    from tradewind.secrets.formats import connection_from_any

    data = _read(tenant, "connections", conn_id)
    if data is None:
        return None
    source: Any = data.get("conn_uri", data)
    return connection_from_any(conn_id, source)


def write_secret(tenant: Tenant, kind: str, name: str, data: dict) -> None:
    """Store a secret in the tenant's Vault path (operators seeding Vault; tests)."""
    path = f"{tenant_prefix(tenant)}/{kind}/{_safe_name(name)}"
    try:
        vault_client().secrets.kv.v2.create_or_update_secret(
            path=path, secret=data, mount_point=settings.TRADEWIND_VAULT_KV_MOUNT
        )
    except _VAULT_DOWN as error:
        raise _unavailable(error) from error
    _cache.forget((tenant.pk, kind, name))


def list_secrets(tenant: Tenant, kind: str) -> list[str]:
    """Names stored in the tenant's Vault path for `kind` ("variables" or "connections")."""
    path = f"{tenant_prefix(tenant)}/{kind}"
    try:
        response = vault_client().secrets.kv.v2.list_secrets(
            path=path, mount_point=settings.TRADEWIND_VAULT_KV_MOUNT
        )
    except hvac_errors.InvalidPath:
        return []
    except _VAULT_DOWN as error:
        raise _unavailable(error) from error
    return sorted(name for name in response["data"]["keys"] if not name.endswith("/"))


# Transit: wrapping data keys with a key that never leaves Vault.


def transit_wrap(raw_key: bytes) -> str:
    """Encrypt a data key with Vault transit; returns Vault's `vault:vN:...` ciphertext."""
    try:
        response = vault_client().secrets.transit.encrypt_data(
            name=settings.TRADEWIND_VAULT_TRANSIT_KEY,
            plaintext=base64.b64encode(raw_key).decode(),
            mount_point=settings.TRADEWIND_VAULT_TRANSIT_MOUNT,
        )
    except _VAULT_DOWN as error:
        raise _unavailable(error) from error
    return response["data"]["ciphertext"]


def transit_unwrap(wrapped: str) -> bytes:
    """Decrypt a data key wrapped by `transit_wrap`."""
    try:
        response = vault_client().secrets.transit.decrypt_data(
            name=settings.TRADEWIND_VAULT_TRANSIT_KEY,
            ciphertext=wrapped,
            mount_point=settings.TRADEWIND_VAULT_TRANSIT_MOUNT,
        )
    except _VAULT_DOWN as error:
        raise _unavailable(error) from error
    return base64.b64decode(response["data"]["plaintext"])


def transit_rewrap(wrapped: str) -> str:
    """Re-encrypt a wrapped data key with the newest version of the transit key, without seeing it."""
    try:
        response = vault_client().secrets.transit.rewrap_data(
            name=settings.TRADEWIND_VAULT_TRANSIT_KEY,
            ciphertext=wrapped,
            mount_point=settings.TRADEWIND_VAULT_TRANSIT_MOUNT,
        )
    except _VAULT_DOWN as error:
        raise _unavailable(error) from error
    return response["data"]["ciphertext"]


def transit_rotate() -> int:
    """Add a new version of the transit key (new wraps use it); returns the latest version number."""
    client = vault_client()
    name = settings.TRADEWIND_VAULT_TRANSIT_KEY
    mount = settings.TRADEWIND_VAULT_TRANSIT_MOUNT
    try:
        client.secrets.transit.rotate_key(name=name, mount_point=mount)
        return int(client.secrets.transit.read_key(name=name, mount_point=mount)["data"]["latest_version"])
    except _VAULT_DOWN as error:
        raise _unavailable(error) from error
