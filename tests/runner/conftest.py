"""Helpers for the runner tests: real bundles uploaded to real tenants, runs driven by the engine services."""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.utils import timezone

from scheduler.models import Dag, DagRun, TaskInstance
from scheduler.states import DagRunState, RunType, TIState
from tenants.models import Tenant
from tradewind.accounts.actors import Actor

ACTOR = Actor.system("tests")


@pytest.fixture(autouse=True)
def _sandbox_storage(storage: Path) -> Path:
    """Every test here may run real sandboxed children: see the root conftest's `storage`."""
    return storage


@pytest.fixture
def dag_folder() -> Iterator[Path]:
    """A throw-away folder for DAG files (readable by sandboxed children running as another uid)."""
    root = Path(tempfile.mkdtemp(prefix="tw-runner-test-"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def out_dir() -> Iterator[Path]:
    """A folder tasks (running as the tenant's uid) may write to, for assertions on what they did."""
    root = Path(tempfile.mkdtemp(prefix="tw-runner-out-"))
    os.chmod(root, 0o777)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def upload(dag_folder: Path) -> Callable[..., list[str]]:
    """upload(tenant, {"file.py": source, ...}) -> the DAG ids the upload activated (import errors fail)."""

    def do(tenant: Tenant, files: dict[str, str]) -> list[str]:
        from scheduler.bundles import upload_bundle

        for name, source in files.items():
            path = dag_folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
            os.chmod(path, 0o644)
        result = upload_bundle(tenant=tenant, actor=ACTOR, source=dag_folder, pause_new_dags=True)
        assert not result.import_errors, result.import_errors
        return result.dags

    return do


def start_run(tenant: Tenant, dag_id: str, *, conf: dict | None = None) -> DagRun:
    """A manual run (logical date: now) of the tenant's DAG, started and scheduled once (its first tasks
    are scheduled)."""
    from scheduler import services

    dag = Dag.objects.for_tenant(tenant).get(dag_id=dag_id)
    run = services.create_dag_run(
        tenant=tenant,
        dag=dag,
        actor=ACTOR,
        run_type=RunType.MANUAL,
        logical_date=timezone.now(),
        data_interval=None,
        conf=conf,
    )
    services.schedule_run(run)
    assert run.state == DagRunState.RUNNING
    return run


def queue(run: DagRun, task_id: str, map_index: int = -1) -> TaskInstance:
    """Queue the scheduled task instance `task_id` of `run` (its try number goes up by one)."""
    from scheduler import services

    ti = TaskInstance.objects.get(dag_run=run, task_id=task_id, map_index=map_index)
    assert ti.state == TIState.SCHEDULED, ti.state
    (queued,) = services.queue_task_instances([ti])
    return queued


def start(run: DagRun, task_id: str) -> TaskInstance:
    """Queue and start (queued → running) a task instance, as a worker would before running it."""
    from scheduler import services

    ti = queue(run, task_id)
    started = services.start_task_instance(
        tenant_id=ti.tenant_id, ti_id=ti.pk, try_number=ti.try_number, hostname="test", pid=None
    )
    assert started is not None
    return started
