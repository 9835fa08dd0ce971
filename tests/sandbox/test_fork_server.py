"""The fork server: one per process, restarted when it dies, gone when its parent dies, shared by threads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from workers.sandbox import fork_server_pid, parse_files, prestart
from workers.sandbox.limits import jobs_dir

from .conftest import DAGS, pid_alive

TENANT = 13
PLATFORM_ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate, timeout_s: float = 5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def server_children(server_pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text()
    except OSError:
        return []
    return [int(pid) for pid in text.split()]


def test_a_killed_fork_server_is_replaced_on_the_next_job():
    old = fork_server_pid()
    os.kill(old, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(old))
    result = parse_files(DAGS, ["plain_module.py"], tenant_id=TENANT)["plain_module.py"]
    assert result["error"] is None
    assert fork_server_pid() != old


def test_jobs_running_when_the_server_dies_fail_and_their_children_die():
    server = fork_server_pid()
    results = {}
    worker = threading.Thread(
        target=lambda: results.update(parse_files(DAGS, ["loop_forever.py"], tenant_id=TENANT, timeout_s=60))
    )
    worker.start()
    assert wait_until(lambda: server_children(server))
    (child,) = server_children(server)
    os.kill(server, signal.SIGKILL)
    worker.join(10)
    assert not worker.is_alive()
    assert "the sandbox fork server died" in results["loop_forever.py"]["error"]
    assert wait_until(lambda: not pid_alive(child))


def test_the_server_exits_when_its_parent_process_dies():
    script = "from workers.sandbox import fork_server_pid, prestart; prestart(); print(fork_server_pid(), flush=True); import time; time.sleep(60)"
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=PLATFORM_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        server = int(parent.stdout.readline())
        assert pid_alive(server)
    finally:
        parent.kill()
        parent.wait()
    assert wait_until(lambda: not pid_alive(server))


def test_a_forked_process_gets_its_own_server():
    ours = fork_server_pid()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            result = parse_files(DAGS, ["plain_module.py"], tenant_id=TENANT)["plain_module.py"]
            os.write(write_end, f"{fork_server_pid()} {result['error'] is None}".encode())
            jobs_dir().rmdir()  # os._exit skips the atexit clean-up
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as reader:
        theirs, ok = reader.read().split()
    os.waitpid(pid, 0)
    assert ok == "True"
    assert int(theirs) != ours
    assert fork_server_pid() == ours


def test_threads_share_the_server_and_jobs_run_concurrently():
    prestart()
    files = ["loop_forever.py", "plain_module.py", "calls_sys_exit.py", "missing_import.py"]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        batches = list(pool.map(lambda f: parse_files(DAGS, [f], tenant_id=TENANT, timeout_s=1), files * 3))
    # three one-second timeouts among twelve jobs: one after the other they would take more than 3 s
    assert time.monotonic() - started < 2.5
    for file, batch in zip(files * 3, batches, strict=True):
        assert (batch[file]["error"] is None) == (file == "plain_module.py")
    assert "timed out after 1 s" in batches[0]["loop_forever.py"]["error"]
    assert "sys.exit(3)" in batches[2]["calls_sys_exit.py"]["error"]
