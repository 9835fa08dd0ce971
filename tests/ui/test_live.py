"""Live updates over the websocket: the run and DAG pages, served by the production ASGI server (daphne, in
a subprocess, over the test database and Redis), recolour task states as the engine publishes them, with
no polling while the socket is open."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import IO
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from scheduler import services
from scheduler.models import TaskInstance
from tenants.roles import Role
from tests.factories import make_run
from tests.ui.conftest import ACTOR, IMPLICIT_WAIT_S

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def asgi_server(django_db_setup) -> Iterator[str]:
    """The base URL of daphne serving tradewind.asgi (HTTP and websockets) on the test database."""
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        pytest.skip("needs PostgreSQL and Redis (CI sets REQUIRE_SERVICES=1, which makes this a failure)")
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_SETTINGS_MODULE": "tradewind.settings"}
    daphne = os.path.join(os.path.dirname(sys.executable), "daphne")
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:  # not a pipe: a full pipe would block the server
        process = subprocess.Popen(
            [daphne, "-b", "127.0.0.1", "-p", str(port), "tradewind.asgi:application"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_serving(process, base, log)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_until_serving(process: subprocess.Popen, base: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/login/", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError as error:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait(timeout=10)
                log.seek(0)
                raise AssertionError(f"daphne did not start: {log.read().decode()[-2000:]}") from error
            time.sleep(0.2)


@pytest.fixture
def live_browser(django_db_setup, chrome, asgi_server) -> Iterator[object]:
    chrome.implicitly_wait(IMPLICIT_WAIT_S)
    chrome.get(f"{asgi_server}/login/")
    chrome.delete_all_cookies()
    yield chrome
    chrome.get("about:blank")
    chrome.delete_all_cookies()


def log_in(browser, base: str, user) -> None:
    """A session for `user` in the database, as its cookie in the browser (the server process checks
    passwords with the production hasher, the tests store them with a fast one)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    browser.get(f"{base}/login/")
    browser.add_cookie({"name": cookie.key, "value": cookie.value, "path": "/"})


def wait_until(browser, condition) -> None:
    """Waits for `condition`, finding its elements again when a live refresh replaced them meanwhile."""
    WebDriverWait(browser, 15, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def wait_live(browser) -> None:
    """Until the socket is open and the refresh that catches up after it opened has replaced the live
    regions: elements found before then may go stale."""

    def caught_up(b) -> bool:
        body = b.find_element(By.TAG_NAME, "body")
        refreshed = body.get_attribute("data-live-refreshed")
        return body.get_attribute("data-live-mode") == "live" and refreshed is not None

    wait_until(browser, caught_up)


def mark(run, task_id: str, state: str) -> None:
    ti = TaskInstance.objects.get(dag_run=run, task_id=task_id)
    services.set_task_instance_state(tenant=run.tenant, actor=ACTOR, ti=ti, state=state)


def test_run_and_grid_pages_follow_task_states_over_the_websocket(
    live_browser, asgi_server, tenant, make_member, make_dag
):
    dag = make_dag(tenant, "etl")
    run = make_run(tenant, dag.active_version)
    log_in(live_browser, asgi_server, make_member(tenant, Role.VIEWER))

    live_browser.get(f"{asgi_server}/t/{tenant.slug}/dags/etl/runs/{run.run_id}/")
    wait_live(live_browser)
    badge = f'[data-ti="{run.run_id}|start|-1"] .state'
    assert live_browser.find_element(By.CSS_SELECTOR, badge).text == "none"
    mark(run, "start", "success")
    wait_until(live_browser, lambda b: b.find_element(By.CSS_SELECTOR, badge).text == "success")
    assert live_browser.find_element(By.TAG_NAME, "body").get_attribute("data-live-mode") == "live"

    live_browser.get(f"{asgi_server}/t/{tenant.slug}/dags/etl/")
    wait_live(live_browser)
    cell = f'[data-testid="grid"] [data-ti="{run.run_id}|end|-1"]'
    assert "state-none" in live_browser.find_element(By.CSS_SELECTOR, cell).get_attribute("class")
    mark(run, "end", "failed")
    wait_until(
        live_browser, lambda b: "state-failed" in b.find_element(By.CSS_SELECTOR, cell).get_attribute("class")
    )
