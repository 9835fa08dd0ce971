"""Fixtures for the engine tests: a data directory shared with child processes, DAG files uploaded to real
tenants, the scheduling loop in a thread, and `manage.py scheduler` / `manage.py worker` as real processes
on the test database and a Redis broker of our own."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from scheduler import services, wakeup
from scheduler.models import Dag, DagRun, TaskInstance
from scheduler.states import RUN_FINISHED, RunType
from tenants.models import Tenant
from tradewind.accounts.actors import Actor

ACTOR = Actor.system("tests")
PLATFORM_ROOT = Path(__file__).resolve().parents[2]

AIRFLOW_HEADER = """\
import time
import pendulum
from airflow import DAG
from airflow.operators.python import PythonOperator

START = pendulum.datetime(2024, 1, 1, tz="UTC")
"""


def dag_file(body: str) -> str:
    """An Airflow-style DAG file: the common imports, then `body` (dedented)."""
    return AIRFLOW_HEADER + textwrap.dedent(body)


def wait_until(predicate: Callable[[], object], timeout: float = 30, what: str = "the condition") -> None:
    """Poll `predicate` every 50 ms until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def run_state(run: DagRun) -> str:
    return DagRun.objects.get(pk=run.pk).state


def wait_for_run(run: DagRun, timeout: float = 60) -> DagRun:
    """Wait until the run has finished; returns it fresh from the database."""
    wait_until(lambda: run_state(run) in RUN_FINISHED, timeout, f"run {run.run_id} to finish")
    return DagRun.objects.get(pk=run.pk)


def tis_of(run: DagRun) -> dict[str, TaskInstance]:
    """task_id (or "task[i]") -> task instance, fresh from the database."""
    found = {}
    for ti in TaskInstance.objects.filter(dag_run=run):
        found[ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"] = ti
    return found


def max_overlap(tis: list[TaskInstance]) -> int:
    """The most task instances that were running at the same moment (from their start and end dates)."""
    edges = sorted([(ti.start_date, 1) for ti in tis] + [(ti.end_date, -1) for ti in tis])
    peak = current = 0
    for _, delta in edges:
        current += delta
        peak = max(peak, current)
    return peak


def trigger(tenant: Tenant, dag_id: str, **kwargs: object) -> DagRun:
    """A manual run of the tenant's DAG (logical date: now)."""
    dag = Dag.objects.for_tenant(tenant).get(dag_id=dag_id)
    run = services.create_dag_run(
        tenant=tenant,
        dag=dag,
        actor=ACTOR,
        run_type=RunType.MANUAL,
        logical_date=kwargs.pop("logical_date", None) or timezone.now(),
        data_interval=None,
        **kwargs,
    )
    return run


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """On SQLite, a test database in a file rather than in shared-cache memory: the scheduler loop, the
    executor's threads and the test write from several connections at once, which shared-cache memory
    refuses ("database table is locked") where a file in WAL mode waits its turn."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3" and not database.get("TEST", {}).get("NAME"):
        database.setdefault("TEST", {})["NAME"] = str(
            Path(tempfile.mkdtemp(prefix="tw-engine-db-")) / "test.sqlite3"
        )


@pytest.fixture
def data_dir(settings) -> Iterator[Path]:
    """A data directory shared with child processes (bundles, logs, wake-up sockets) that sandboxed
    children (other uids when we are root) can reach; short heartbeats."""
    root = Path(tempfile.mkdtemp(prefix="tw-engine-"))
    os.chmod(root, 0o711)
    settings.DATA_DIR = root
    settings.BUNDLE_ROOT = root / "bundles"
    settings.LOG_ROOT = root / "logs"
    settings.TRADEWIND_PARSE_TIMEOUT = 20
    settings.TRADEWIND_HEARTBEAT_SECONDS = 0.5
    try:
        yield root
    finally:
        for directory, _dirs, _files in os.walk(root):
            os.chmod(directory, 0o755)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def upload(data_dir: Path) -> Callable[[Tenant, dict[str, str]], list[str]]:
    """upload(tenant, {"file.py": source}) -> the DAG ids of the upload, activated and unpaused."""
    from scheduler.bundles import upload_bundle

    def do(tenant: Tenant, files: dict[str, str]) -> list[str]:
        folder = data_dir / f"src-{uuid.uuid4().hex[:8]}"
        folder.mkdir(mode=0o755)
        for name, source in files.items():
            (folder / name).write_text(source)
            os.chmod(folder / name, 0o644)
        result = upload_bundle(tenant=tenant, actor=ACTOR, source=folder)
        assert not result.import_errors, result.import_errors
        Dag.objects.for_tenant(tenant).filter(dag_id__in=result.dags).update(is_paused=False)
        return result.dags

    return do


@contextmanager
def scheduling(tenant_ids: list[int], executor) -> Iterator[None]:
    """The real scheduling loop (`schedule_tenants`) for these tenants, in a thread, until the block ends."""
    from scheduler.supervisor import schedule_tenants

    stop = threading.Event()
    failures: list[BaseException] = []

    def loop() -> None:
        try:
            schedule_tenants(tenant_ids, None, stop, executor)
        except BaseException as error:  # reported by the test, not lost in the thread
            failures.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, name="test-scheduler", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        wakeup.interrupt()
        thread.join(30)
        executor.shutdown(wait=True)
    assert not failures, failures


# --- child processes ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    """The test database (pytest-django's test_<NAME>), for child processes: they see committed data."""
    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("child processes need the PostgreSQL test database (CI sets REQUIRE_SERVICES=1)")
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def redis_url() -> str:
    """Our Redis database (TEST_REDIS_URL), emptied first: the broker and the wake-up channel."""
    url = os.environ.get("TEST_REDIS_URL") or settings.REDIS_URL
    if not url:
        pytest.skip("Redis is not reachable (CI sets REQUIRE_SERVICES=1, which makes this a failure)")
    import redis

    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def celery_app(redis_url: str) -> object:
    """This process's Celery app, sending to our Redis broker (the same URL for the whole session)."""
    from tradewind.celery import app

    if app.conf.broker_url != redis_url:
        app.conf.broker_url = redis_url
    return app


class Processes:
    """`manage.py` commands started as real processes (each in its own session), stopped at the end."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.started: list[subprocess.Popen] = []

    def start(
        self, *args: str, env: dict[str, str] | None = None, name: str | None = None
    ) -> subprocess.Popen:
        log = self.log_dir / f"{name or args[0]}-{len(self.started)}.log"
        process = subprocess.Popen(
            [sys.executable, str(PLATFORM_ROOT / "manage.py"), *args],
            cwd=PLATFORM_ROOT,
            env={**self.env, **(env or {})},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process.log = log  # type: ignore[attr-defined]
        self.started.append(process)
        return process

    def worker(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """A Celery worker; returns once it consumes its queues."""
        process = self.start("worker", "--loglevel", "INFO", *args, env=env, name="worker")
        wait_until(
            lambda: b"ready." in process.log.read_bytes() or process.poll() is not None, 60, "a worker"
        )
        assert process.poll() is None, self.output(process)
        return process

    def scheduler(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        return self.start("scheduler", *args, env=env, name="scheduler")

    @staticmethod
    def output(process: subprocess.Popen) -> str:
        return process.log.read_text(errors="replace")[-5000:]  # type: ignore[attr-defined]

    def kill(self, process: subprocess.Popen, signum: int = signal.SIGKILL, group: bool = True) -> None:
        try:
            if group:
                os.killpg(process.pid, signum)
            else:
                os.kill(process.pid, signum)
        except ProcessLookupError:
            pass
        process.wait(30)

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in self.started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for process in self.started:  # a killed group may leave orphans in it (sandbox fork servers)
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def processes(data_dir: Path, redis_url: str) -> Iterator[Processes]:
    """Start `manage.py` commands on the test database, the data directory and our Redis (the broker and
    the wake-up channel), with short engine timeouts."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))},
        "DJANGO_SETTINGS_MODULE": "tradewind.settings",
        "DATABASE_URL": database_url(),
        "TRADEWIND_DATA_DIR": str(data_dir),
        "CELERY_BROKER_URL": redis_url,
        "REDIS_URL": redis_url,
        "TRADEWIND_HEARTBEAT_SECONDS": "0.5",
        "TRADEWIND_LEASE_SECONDS": "3",
        "TRADEWIND_SCHEDULER_MAX_SLEEP": "2",
        "TRADEWIND_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    log_dir = Path(tempfile.mkdtemp(prefix="tw-engine-logs-"))
    group = Processes(env, log_dir)
    try:
        yield group
    finally:
        group.stop_all()
        shutil.rmtree(log_dir, ignore_errors=True)
