"""Which values are secrets: Airflow's rule for sensitive names, shared by the SDK and the platform.

Pure Python on purpose: the platform's log masker imports this without the rest of the SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Airflow's default "sensitive_var_conn_names": a name containing any of these words holds a secret.
SENSITIVE_KEY_WORDS: frozenset[str] = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "authorization",
        "passphrase",
        "passwd",
        "password",
        "private_key",
        "secret",
        "token",
        "keyfile_dict",
        "service_account",
    }
)


def is_sensitive_key(name: str | None) -> bool:
    """True when a variable, connection-extra or dict key with this name holds a secret (case-insensitive
    substring match, as Airflow's secrets masker does)."""
    if not name:
        return False
    lowered = name.strip().lower()
    return any(word in lowered for word in SENSITIVE_KEY_WORDS)


def iter_secret_values(value: Any, name: str | None = None) -> Iterator[str]:
    """Yield every string inside `value` that must be masked, following Airflow's documented rule.

    Unnamed strings are secrets (a connection password); a dict's values are judged by their own keys (a
    connection's extra); under a sensitive name every leaf is a secret (a variable named `api_key`).
    """
    hide = name is not None and is_sensitive_key(name)
    if isinstance(value, dict):
        for key, item in value.items():
            yield from iter_secret_values(item, name if hide else str(key))
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from iter_secret_values(item, name)
    elif name is None or hide:
        if isinstance(value, str) and value:
            yield value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield str(value)


def mask_secret(value: Any, name: str | None = None) -> None:
    """Ask the running task's parent to mask `value` (or its secret parts, when `name` is a non-sensitive
    key) in logs from now on; Airflow's `mask_secret`. Does nothing outside a task."""
    from tradewind.sdk.execution import current_client

    client = current_client()
    if client is None:
        return
    for secret in iter_secret_values(value, name):
        client.mask_secret(secret)
