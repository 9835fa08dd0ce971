"""`manage.py standalone` boots for real on embedded defaults: health, login page, log in, demo tenant."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(base: str, process: subprocess.Popen, deadline_s: float = 60) -> dict:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"standalone exited early:\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                return json.load(response)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError("standalone did not answer /health in time")


@pytest.fixture
def standalone(tmp_path):
    """A real standalone process on SQLite in a fresh data directory; yields (base URL, first output)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(TRADEWIND_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "standalone", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, process)
        lines = []
        while not any("password" in line for line in lines):
            lines.append(process.stdout.readline())
        yield base, "".join(lines)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert (tmp_path / "data" / "tradewind.sqlite3").exists()


def test_standalone_serves_health_login_and_the_demo_tenant(standalone):
    base, output = standalone
    assert f"Tradewind is running at {base}/" in output
    password = re.search(r"log in as 'admin' with password '([^']+)'", output)
    assert password, output

    with urllib.request.urlopen(f"{base}/health") as response:
        health = json.load(response)
    assert health["status"] == "ok"

    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_page = browser.open(f"{base}/login/").read().decode()
    assert "Log in to Tradewind" in login_page
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page)[1]
    form = urllib.parse.urlencode(
        {"username": "admin", "password": password[1], "csrfmiddlewaretoken": csrf, "next": "/"}
    ).encode()
    request = urllib.request.Request(f"{base}/login/", data=form, headers={"Referer": f"{base}/login/"})
    landing = browser.open(request).read().decode()
    assert "Your tenants" in landing
    assert "/t/demo/" in landing
    tenant_home = browser.open(f"{base}/t/demo/").read().decode()
    assert "You are <strong>Admin</strong>" in tenant_home
