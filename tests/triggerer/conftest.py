"""Helpers for the triggerer tests: real bundles, tasks deferred by the real runner, triggerers driven by hand."""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scheduler.models import TaskInstance
from scheduler.states import TIState
from tenants.models import Tenant
from tests.runner.conftest import ACTOR, _sandbox_storage, out_dir, queue, start_run  # noqa: F401  (fixtures)
from workers import runner
from workers.logs import get_log_store
from workers.sandbox import templates
from workers.triggerer import Triggerer

LIB = Path(__file__).resolve().parents[1] / "dags" / "triggerer" / "triggers_lib.py"
PRELUDE = """
import os
from datetime import datetime, timedelta
from tradewind.sdk import DAG
from tradewind.sdk.baseoperator import BaseOperator
from tradewind.sdk.operators.empty import EmptyOperator
from tradewind.sdk.operators.python import PythonOperator
"""


def dag_file(body: str, dag_id: str = "job", **dag_kwargs: object) -> str:
    """A DAG file: PRELUDE, then `body` inside `with DAG(dag_id, ...)`."""
    kwargs = "".join(f", {name}={value}" for name, value in dag_kwargs.items())
    indented = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    return f'{PRELUDE}\nwith DAG("{dag_id}", schedule=None, start_date=datetime(2024, 1, 1){kwargs}) as dag:\n{indented}\n'


@pytest.fixture
def upload() -> Iterator[Callable[..., list[str]]]:
    """upload(tenant, {"file.py": source}) -> the DAG ids activated; each call a bundle of its own that also
    holds tests/dags/triggerer/triggers_lib.py (so DAGs can defer to its triggers)."""
    from scheduler.bundles import upload_bundle

    folders: list[Path] = []

    def do(tenant: Tenant, files: dict[str, str]) -> list[str]:
        folder = Path(tempfile.mkdtemp(prefix="tw-triggerer-dags-"))
        os.chmod(folder, 0o755)
        folders.append(folder)
        for name, source in {"triggers_lib.py": LIB.read_text(), **files}.items():
            (folder / name).write_text(source)
            os.chmod(folder / name, 0o644)
        result = upload_bundle(tenant=tenant, actor=ACTOR, source=folder, pause_new_dags=True)
        assert not result.import_errors, result.import_errors
        return result.dags

    yield do
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def run_try(ti: TaskInstance) -> TaskInstance:
    """Queue the scheduled task instance and run one try with the real runner (a sandboxed child)."""
    queued = queue(ti.dag_run, ti.task_id, ti.map_index)
    finished = runner.run_task_instance(tenant_id=ti.tenant_id, ti_id=ti.pk, try_number=queued.try_number)
    assert finished is not None
    return TaskInstance.objects.get(pk=ti.pk)


def task(run, task_id: str, map_index: int = -1) -> TaskInstance:
    return TaskInstance.objects.select_related("dag_run__dag").get(
        dag_run=run, task_id=task_id, map_index=map_index
    )


def deferred(run, task_id: str) -> TaskInstance:
    """Run the task's first try: it must defer."""
    ti = run_try(task(run, task_id))
    assert ti.state == TIState.DEFERRED, (ti.state, ti.error)
    # The try's child forked from a template of the tenant's uid: stop it, so that the processes the tests
    # see under that uid (or as the fork server's children) are the triggerer's hosts alone.
    templates.stop_all()
    return ti


def drive(*triggerers: Triggerer, until: Callable[[], bool], timeout: float = 30) -> None:
    """Run triggerer passes until `until()` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "timed out waiting"
        for triggerer in triggerers:
            triggerer.run_pass()
        time.sleep(0.05)


def state_of(ti: TaskInstance) -> str:
    return TaskInstance.objects.filter(pk=ti.pk).values_list("state", flat=True).get()


def log_of(ti: TaskInstance) -> str:
    ti = TaskInstance.objects.select_related("dag_run__dag").get(pk=ti.pk)
    return get_log_store().read(ti, ti.try_number).decode()


@pytest.fixture
def make_triggerer() -> Iterator[Callable[..., Triggerer]]:
    """make_triggerer(tenant, ...) -> a Triggerer of that tenant, shut down after the test."""
    made: list[Triggerer] = []

    def make(*tenants: Tenant, **kwargs: object) -> Triggerer:
        triggerer = Triggerer(tenant_ids=[t.pk for t in tenants], **kwargs)
        made.append(triggerer)
        return triggerer

    yield make
    for triggerer in made:
        triggerer.shutdown()
