"""Whatever one DAG file does while it is imported, only that file fails, with an error saying why."""

from __future__ import annotations

import os
import time

import pytest

from workers.sandbox import Limits, parse_files

from .conftest import DAGS, processes_of_uid

TENANT = 7


def parse_one(file: str, **kwargs) -> dict:
    return parse_files(DAGS, [file], tenant_id=TENANT, **kwargs)[file]


def test_infinite_loop_at_import_times_out():
    started = time.monotonic()
    result = parse_one("loop_forever.py", timeout_s=1)
    assert time.monotonic() - started < 5
    assert result["dags"] == []
    assert result["error"].startswith("timed out after 1 s while importing loop_forever.py")


def test_cpu_time_limit_kills_a_busy_file():
    result = parse_one("loop_forever.py", timeout_s=20, limits=Limits(cpu_s=1))
    assert "CPU time limit of 1 s exceeded" in result["error"]
    assert result["duration_ms"] < 10_000


def test_memory_bomb_fails_with_memory_error():
    result = parse_one("memory_bomb.py", limits=Limits(memory_mb=512))
    assert result["error"].startswith("MemoryError while importing memory_bomb.py: out of memory")
    assert "memory limit 512 MB" in result["error"]


def test_the_memory_limit_leaves_room_for_a_thread_pool():
    assert parse_one("thread_pool.py")["error"] is None


def test_fork_bomb_is_contained_and_cleaned_up():
    tenant = 4242  # a uid of its own, so the NPROC budget is not shared with other tests' children
    started = time.monotonic()
    result = parse_files(DAGS, ["fork_bomb.py"], tenant_id=tenant, limits=Limits(nproc=20), timeout_s=10)[
        "fork_bomb.py"
    ]
    assert time.monotonic() - started < 10
    assert "BlockingIOError" in result["error"] or "timed out" in result["error"]
    if os.geteuid() == 0:  # every copy got SIGKILL with the child's process group: give them time to go
        deadline = time.monotonic() + 3
        while processes_of_uid(200000 + tenant) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes_of_uid(200000 + tenant) == []


def test_sys_exit_at_import_is_an_import_error():
    result = parse_one("calls_sys_exit.py")
    assert result["error"].startswith("sys.exit(3) was called while importing calls_sys_exit.py")
    assert 'File "calls_sys_exit.py", line 3' in result["error"]


def test_os_exit_at_import_is_an_import_error():
    result = parse_one("calls_os_exit.py")
    assert result["error"].startswith("the process exited with status 3 while importing calls_os_exit.py")


def test_keyboard_interrupt_at_import_is_an_import_error():
    result = parse_one("keyboard_interrupt.py")
    assert result["error"].startswith("KeyboardInterrupt was raised while importing keyboard_interrupt.py")


def test_gigabytes_of_output_are_cut_off_quickly():
    started = time.monotonic()
    result = parse_one("floods_output.py", limits=Limits(output_bytes=1024 * 1024))
    assert time.monotonic() - started < 5
    assert result["error"].startswith("output limit of 1 MB exceeded while importing floods_output.py")


def test_segfault_is_reported_with_the_python_stack():
    result = parse_one("segfaults.py")
    assert result["error"].startswith(
        "crashed with SIGSEGV (segmentation fault) while importing segfaults.py"
    )
    assert "segfaults.py" in result["error"].split("Last output:", 1)[1]


SYNTAX_ERROR = """\
from datetime import datetime

def broken(:
    pass
"""


def test_syntax_error_names_the_line_with_a_relative_path(bundle):
    name = bundle.write("dags/syntax_error.py", SYNTAX_ERROR)  # written here: a linter cannot parse it
    error = parse_files(bundle.root, [name], tenant_id=TENANT)[name]["error"]
    assert error.startswith("SyntaxError while importing dags/syntax_error.py: invalid syntax")
    assert 'File "dags/syntax_error.py", line 3' in error
    assert "def broken(:" in error
    assert str(bundle.root) not in error


def test_missing_import_names_the_module_and_the_line():
    error = parse_one("missing_import.py")["error"]
    assert error.startswith(
        "ModuleNotFoundError while importing missing_import.py: No module named 'tradewind_no_such_module_xyz'"
    )
    assert 'File "missing_import.py", line 3, in <module>' in error
    assert "workers/sandbox" not in error


def test_file_size_limit(bundle):
    bundle.write("big_file.py", 'open("big.bin", "wb").write(b"x" * (3 * 1024 * 1024))\n')
    result = parse_files(bundle.root, ["big_file.py"], tenant_id=TENANT, limits=Limits(file_size_mb=1))
    assert "File too large" in result["big_file.py"]["error"]


def test_paths_outside_the_bundle_are_refused():
    result = parse_files(DAGS, ["../sandbox/plain_module.py", "/etc/passwd"], tenant_id=TENANT)
    assert all("is not a path inside the bundle" in r["error"] for r in result.values())


def test_a_missing_file_is_an_error_for_that_file_only():
    result = parse_files(DAGS, ["no_such_file.py", "plain_module.py"], tenant_id=TENANT)
    assert (
        "No such file" in result["no_such_file.py"]["error"]
        or "FileNotFound" in result["no_such_file.py"]["error"]
    )
    assert result["plain_module.py"] == {
        "dags": [],
        "error": None,
        "duration_ms": result["plain_module.py"]["duration_ms"],
    }


@pytest.mark.parametrize("parallelism", [1, 4])
def test_bad_files_fail_alone_in_one_batch(parallelism):
    files = [
        "loop_forever.py",
        "calls_sys_exit.py",
        "calls_os_exit.py",
        "segfaults.py",
        "floods_output.py",
        "plain_module.py",
        "missing_import.py",
    ]
    results = parse_files(DAGS, files, tenant_id=TENANT, timeout_s=1, parallelism=parallelism)
    assert list(results) == files
    assert results["plain_module.py"]["error"] is None
    assert all(results[f]["error"] for f in files if f != "plain_module.py")


def test_garbage_on_the_rpc_socket_gets_the_child_killed():
    started = time.monotonic()
    error = parse_one("writes_to_the_rpc_socket.py")["error"]
    assert time.monotonic() - started < 5
    assert error.startswith(
        "the process was killed while importing writes_to_the_rpc_socket.py: it broke the sandbox protocol"
    )
