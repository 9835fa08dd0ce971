"""Login throttling: failures counted per (username, client IP) in Django's cache; too many lock it out."""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def _key(kind: str, username: str, request: HttpRequest | None) -> str:
    ip = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    digest = hashlib.sha256(f"{username.strip().lower()}|{ip}".encode()).hexdigest()[:40]
    return f"login:{kind}:{digest}"


def locked_until(username: str, request: HttpRequest | None) -> float | None:
    """The time (epoch seconds) the lockout of this username from this IP ends, or None."""
    until = cache.get(_key("lock", username, request))
    return until if until and until > time.time() else None


def note_failure(username: str, request: HttpRequest | None) -> bool:
    """Count a failed login; True when this failure starts a lockout."""
    window = settings.TRADEWIND_LOGIN_LOCKOUT_SECONDS
    key = _key("fail", username, request)
    cache.add(key, 0, timeout=window)
    try:
        failures = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        failures = 1
    if failures >= settings.TRADEWIND_LOGIN_MAX_FAILURES and locked_until(username, request) is None:
        cache.set(_key("lock", username, request), time.time() + window, timeout=window)
        cache.delete(key)
        return True
    return False


def note_success(username: str, request: HttpRequest | None) -> None:
    """A successful login forgets earlier failures."""
    cache.delete(_key("fail", username, request))
