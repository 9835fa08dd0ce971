"""Pytest plugin, loaded before Django: picks the real services the suite runs against.

PostgreSQL and Redis are used when `TEST_DATABASE_URL` / `TEST_REDIS_URL` are set or when the services
answer on localhost's standard ports; otherwise the suite runs on SQLite with the in-memory channel layer.
With `REQUIRE_SERVICES=1` a missing service stops the run instead.
"""

from __future__ import annotations

import os
import socket
import tempfile
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/tradewind"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def is_reachable(host: str, port: int) -> bool:
    """Does something accept TCP connections on host:port?"""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _pick(env_name: str, default_url: str, port: int, service: str, require: bool) -> str | None:
    url = os.environ.get(env_name) or (default_url if is_reachable("127.0.0.1", port) else None)
    if url is None and require:
        raise pytest.UsageError(f"REQUIRE_SERVICES=1 but {service} is not reachable (set {env_name})")
    return url


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    require = os.environ.get("REQUIRE_SERVICES") == "1"
    database_url = _pick("TEST_DATABASE_URL", DEFAULT_POSTGRES_URL, 5432, "PostgreSQL", require)
    redis_url = _pick("TEST_REDIS_URL", DEFAULT_REDIS_URL, 6379, "Redis", require)
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.pop("TRADEWIND_ENV", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    if redis_url:
        redis_url = _per_worker(redis_url)
        os.environ["REDIS_URL"] = redis_url
        os.environ["TEST_REDIS_URL"] = redis_url
    # The suite never touches the developer's ./data.
    os.environ["TRADEWIND_DATA_DIR"] = tempfile.mkdtemp(prefix="tradewind-test-")


def _per_worker(redis_url: str) -> str:
    """Each pytest-xdist worker (gw0, gw1, ...) gets its own Redis database, counting down from the given one:
    fixtures empty theirs (the Celery broker among it), which must not drop another worker's messages."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return redis_url
    parts = urlsplit(redis_url)
    database = int(parts.path.strip("/") or 0) - int(worker[2:])
    if database < 0:
        raise pytest.UsageError(f"too many xdist workers for Redis databases counting down from {redis_url}")
    return urlunsplit(parts._replace(path=f"/{database}"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    database = os.environ.get("DATABASE_URL", "sqlite (embedded)")
    redis = os.environ.get("REDIS_URL", "in-memory channel layer (no Redis)")
    return [f"tradewind services: database={database} redis={redis}"]
