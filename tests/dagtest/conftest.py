"""Helpers for the `dags test` tests: the command called in-process, its JSON parsed; writable folders."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.runner.conftest import _sandbox_storage  # noqa: F401  (the root storage fixture, autouse here too)

DAGS = Path(__file__).resolve().parents[1] / "dags" / "dagtest"


@dataclass
class CommandResult:
    """What one `manage.py dags ...` call printed, and its exit status."""

    stdout: str
    stderr: str
    exit_code: int

    @property
    def document(self) -> dict:
        return json.loads(self.stdout)


def run_command(*args: str) -> CommandResult:
    """`manage.py dags *args`, in-process: CommandError is the command's non-zero exit."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("dags", *args, stdout=out, stderr=err)
        code = 0
    except CommandError as error:
        err.write(str(error))
        code = error.returncode
    return CommandResult(out.getvalue(), err.getvalue(), code)


@pytest.fixture
def dags() -> Callable[..., CommandResult]:
    return run_command


def _private_copy(source: Path) -> Path:
    root = Path(tempfile.mkdtemp(prefix="tw-dagtest-"))
    os.chmod(root, 0o755)
    target = root / source.name
    shutil.copytree(source, target)
    return target


@pytest.fixture
def dag_copy() -> Iterator[Callable[[str], Path]]:
    """dag_copy("bad") -> a private copy of tests/dags/dagtest/bad that a test may add files to."""
    made: list[Path] = []

    def copy(name: str) -> Path:
        target = _private_copy(DAGS / name)
        made.append(target.parent)
        return target

    yield copy
    for root in made:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def out_dir() -> Iterator[Path]:
    """A folder the DAGs' tasks (running as the tenant's uid) write to; the tests read what they wrote."""
    root = Path(tempfile.mkdtemp(prefix="tw-dagtest-out-"))
    os.chmod(root, 0o777)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
