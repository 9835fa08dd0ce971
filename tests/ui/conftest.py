"""Fixtures for the UI tests: storage the sandbox can reach, DAGs built from real SDK DAGs or uploaded as real
bundles, a headless Chromium driven by Selenium, and a scheduler driving runs in a background thread."""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
import textwrap
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from scheduler.models import Dag
from tenants.models import Tenant
from tests.factories import make_dag_version
from tradewind.accounts.actors import Actor
from tradewind.sdk import DAG, Param, TaskGroup
from tradewind.sdk.operators.empty import EmptyOperator

ACTOR = Actor.system("tests")
PASSWORD = "a-long-test-password"  # tests/conftest.py's make_member sets it
IMPLICIT_WAIT_S = 10
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)

# A two-step DAG the browser tests upload as a real bundle and run for real: the first step echoes the
# `greeting` param (overridden by the run's conf), so the log shows which conf the run got.
PIPELINE_DAG = """
from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG(
    dag_id="ui_pipeline",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    tags=["ui", "demo"],
    doc_md="# UI pipeline\\nSays **hello**, then done.",
    params={"greeting": "hello"},
):
    hello = BashOperator(task_id="hello", bash_command="echo 'greeting={{ params.greeting }}'")
    done = BashOperator(task_id="done", bash_command="echo done")
    hello >> done
"""


@pytest.fixture(autouse=True)
def _sandbox_storage(storage: Path) -> Path:
    """Every test here may run real sandboxed children: see the root conftest's `storage`."""
    return storage


def grouped_dag(dag_id: str, **kwargs: object) -> DAG:
    """A small SDK DAG: `start`, a task group `grp` with `inner`, a mapped task `fan` and `end`."""
    with DAG(dag_id, schedule=None, **kwargs) as dag:
        start = EmptyOperator(task_id="start")
        with TaskGroup("grp") as grp:
            EmptyOperator(task_id="inner")
        fan = EmptyOperator.partial(task_id="fan").expand(doc=["a", "b", "c"])
        end = EmptyOperator(task_id="end")
        start >> grp >> fan >> end
    return dag


@pytest.fixture
def make_dag(db) -> Callable[..., Dag]:
    """make_dag(tenant, dag_id, **DAG kwargs) -> a DAG of that tenant with an active version (no bundle
    files: enough for every page and for creating runs, not for running tasks)."""

    def make(tenant: Tenant, dag_id: str = "etl", **kwargs: object) -> Dag:
        version = make_dag_version(tenant, grouped_dag(dag_id, **kwargs))
        serialized = version.serialized
        # What activating an uploaded version copies to the Dag row for listing (the factory does not).
        Dag.objects.filter(pk=version.dag_id).update(
            tags=serialized["tags"],
            description=serialized["description"] or "",
            owners=", ".join(serialized["owners"]),
        )
        return Dag.objects.get(pk=version.dag_id)

    return make


def params_dag(dag_id: str) -> DAG:
    """A DAG whose `count` param must be an integer."""
    with DAG(dag_id, schedule=None, params={"count": Param(3, type="integer")}) as dag:
        EmptyOperator(task_id="only")
    return dag


def zip_of(files: dict[str, str | bytes]) -> bytes:
    """A zip archive of `files` (archive name -> content; str is dedented)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, textwrap.dedent(content) if isinstance(content, str) else content)
    return buffer.getvalue()


@pytest.fixture
def upload_pipeline(storage: Path) -> Callable[[Tenant], None]:
    """upload_pipeline(tenant): upload PIPELINE_DAG as the tenant's repository (a real, runnable bundle)."""
    from scheduler.bundles import upload_bundle

    def upload(tenant: Tenant) -> None:
        archive = io.BytesIO(zip_of({"pipeline.py": PIPELINE_DAG}))
        result = upload_bundle(tenant=tenant, actor=ACTOR, source=archive)
        assert not result.import_errors, result.import_errors

    return upload


@contextlib.contextmanager
def scheduler_running(tenant: Tenant) -> Iterator[None]:
    """The tenant's scheduler making passes in a background thread (tasks run on a LocalExecutor, for
    real, in the sandbox) until the block ends."""
    from scheduler.loop import TenantScheduler
    from workers.executors import LocalExecutor

    stop = threading.Event()
    executor = LocalExecutor(parallelism=2)
    failures: list[BaseException] = []

    def loop() -> None:
        scheduler = TenantScheduler(tenant.pk, executor)
        try:
            while not stop.is_set():
                scheduler.run_pass()
                stop.wait(0.3)
        except BaseException as error:  # reported by the test, not lost in the thread
            failures.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, name="ui-test-scheduler", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
        executor.shutdown(wait=True)
    assert not failures, failures


@pytest.fixture(scope="session")
def chrome() -> Iterator[object]:
    """One headless Chromium for the session (Debian's chromium and chromium-driver; .ci/run installs
    them)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    assert binary and driver_path, "the browser tests need Debian's chromium and chromium-driver packages"
    profile = tempfile.mkdtemp(prefix="tw-ui-chrome-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(django_db_setup, chrome, live_server) -> Iterator[object]:
    """The session's Chromium, logged out, pointed at this test's live server. Finding an element waits up
    to IMPLICIT_WAIT_S for it (the page a click opens may still be loading); see `absent()`.

    The test database is set up first so that it is dropped last, after the live server has stopped."""
    chrome.implicitly_wait(IMPLICIT_WAIT_S)
    chrome.get(f"{live_server.url}/login/")
    chrome.delete_all_cookies()
    yield chrome
    chrome.get("about:blank")  # stop the page's polling before the database goes away
    chrome.delete_all_cookies()


def absent(browser: object, selector: str) -> bool:
    """Is nothing on the current page matching `selector` (answered at once, without the implicit wait)?"""
    from selenium.webdriver.common.by import By

    browser.implicitly_wait(0)
    try:
        return browser.find_elements(By.CSS_SELECTOR, selector) == []
    finally:
        browser.implicitly_wait(IMPLICIT_WAIT_S)
