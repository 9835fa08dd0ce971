"""Fixtures for the run-control tests that run real tasks: bundles and logs in a directory sandboxed
children can reach, DAG files uploaded to a real tenant, and a real scheduler running in a thread."""

from __future__ import annotations

import os
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tenants.models import Tenant
from tradewind.accounts.actors import Actor


@pytest.fixture
def storage(storage: Path, settings) -> Path:
    """The root conftest's storage, with heartbeats every 0.2 s so a cleared running try stops quickly."""
    settings.TRADEWIND_HEARTBEAT_SECONDS = 0.2
    return storage


@pytest.fixture
def upload(storage: Path) -> Callable[[Tenant, dict[str, str]], list[str]]:
    """upload(tenant, {"file.py": source}) -> the DAG ids the (activated, unpaused) upload defines."""
    from scheduler.bundles import upload_bundle

    folder = storage / "src"

    def do(tenant: Tenant, files: dict[str, str]) -> list[str]:
        folder.mkdir(mode=0o755, exist_ok=True)
        for name, source in files.items():
            path = folder / name
            path.write_text(textwrap.dedent(source))
            os.chmod(path, 0o644)
        result = upload_bundle(tenant=tenant, actor=Actor.system("tests"), source=folder)
        assert not result.import_errors, result.import_errors
        return result.dags

    return do


@pytest.fixture
def running_scheduler() -> Iterator[Callable[[Tenant], None]]:
    """running_scheduler(tenant): the real scheduling loop (local executor) for the tenant, in a thread,
    until the test ends — the "scheduler running elsewhere" that commands like `dags trigger --wait` need."""
    from scheduler.supervisor import schedule_tenants

    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(tenant: Tenant) -> None:
        thread = threading.Thread(target=schedule_tenants, args=([tenant.pk], None, stop), daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
