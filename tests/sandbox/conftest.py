"""Fixtures for the sandbox tests: real fork servers, real child processes, real files."""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.sandbox.server import sample_ti_info

DAGS = Path(__file__).resolve().parents[1] / "dags" / "sandbox"


class Bundle:
    """A throw-away bundle directory that sandboxed children (another uid when we are root) can read."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, source: str) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return name


@pytest.fixture
def bundle() -> Iterator[Bundle]:
    root = Path(tempfile.mkdtemp(prefix="tw-sandbox-test-"))
    os.chmod(root, 0o755)
    try:
        yield Bundle(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def processes_of_uid(uid: int) -> list[int]:
    """Pids of the live (not zombie) processes whose real uid is `uid`."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry.name}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
            pids.append(int(entry.name))
    return pids


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def ti_info(dag_id: str, task_id: str, **overrides) -> dict:
    """A task instance description as the platform's worker builds it."""
    return sample_ti_info(dag_id, task_id, **overrides)


class FakePlatform:
    """The parent's side of the RPC for tests: XComs and variables in dicts, every call recorded."""

    def __init__(self, variables: dict | None = None) -> None:
        self.xcoms: dict[tuple[str, str, str, int], object] = {}
        self.variables = dict(variables or {})
        self.calls: list[tuple[str, dict]] = []
        self.masked: list[str] = []

    def handler_for(self, info: dict):
        def handler(op: str, kwargs: dict):
            self.calls.append((op, kwargs))
            if op == "xcom_push":
                self.xcoms[(info["run_id"], info["task_id"], kwargs["key"], info["map_index"])] = kwargs[
                    "value"
                ]
                return None
            if op == "xcom_pull":
                return [
                    {"task_id": task_id, "map_index": map_index, "value": value}
                    for (run_id, task_id, key, map_index), value in self.xcoms.items()
                    if run_id == kwargs["run_id"] and task_id in kwargs["task_ids"] and key == kwargs["key"]
                ]
            if op == "get_variable":
                value = self.variables.get(kwargs["key"])
                if value == "FORBIDDEN":
                    raise PermissionError(f"variable {kwargs['key']} is not readable by this DAG")
                return value
            if op == "mask_secret":
                self.masked.append(kwargs["value"])
                return None
            raise NotImplementedError(op)

        return handler
