"""Fixtures for the DAG repository tests: a private bundle store the sandbox can reach, archive builders,
and checks that a rejected upload left nothing behind."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import textwrap
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.models import Bundle, BundleVersion, Dag, DagVersion, ParsedFile, ParseImportError
from tenants.models import Tenant
from tradewind.accounts.actors import Actor

DAGS = Path(__file__).resolve().parents[1] / "dags" / "bundles"
ACTOR = Actor.system("tests")


@pytest.fixture(autouse=True)
def bundle_store(settings) -> Iterator[Path]:
    """BUNDLE_ROOT in a fresh directory that sandboxed children (other uids when we are root) can reach."""
    root = Path(tempfile.mkdtemp(prefix="tw-bundles-test-"))
    os.chmod(root, 0o755)
    settings.BUNDLE_ROOT = root / "bundles"
    settings.TRADEWIND_PARSE_TIMEOUT = 10
    try:
        yield settings.BUNDLE_ROOT
    finally:
        for directory, _dirs, _files in os.walk(root):
            os.chmod(directory, 0o755)
        shutil.rmtree(root, ignore_errors=True)


def stored_files(store: Path) -> list[str]:
    """Everything in the store except the top-level directories (tenants, staging) and the lock files."""
    found = []
    for directory, dirs, files in os.walk(store):
        for name in files + [f"{d}/" for d in dirs]:
            rel = os.path.relpath(os.path.join(directory, name), store)
            if "/" in rel.rstrip("/") and not rel.endswith("/.lock"):
                found.append(rel)
    return sorted(found)


def rows_of(tenant: Tenant) -> dict[str, int]:
    """How many rows of each repository model the tenant has."""
    models = (Bundle, BundleVersion, Dag, DagVersion, ParseImportError, ParsedFile)
    return {model.__name__: model.objects.for_tenant(tenant).count() for model in models}


NO_ROWS = {
    name: 0 for name in ("Bundle", "BundleVersion", "Dag", "DagVersion", "ParseImportError", "ParsedFile")
}


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write `files` (relative path -> content; str is dedented) under `root`."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(textwrap.dedent(content))
        else:
            path.write_bytes(content)
    return root


def make_zip(members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests want
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def make_tar(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode, encoding="utf-8", errors="surrogateescape") as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def dag_source(dag_id: str, *, tasks: int = 2, extra: str = "", **dag_kwargs: object) -> str:
    """A DAG file (native SDK) with a chain of `tasks` empty tasks; `dag_kwargs` go to DAG(...)."""
    kwargs = "".join(f"    {key}={value!r},\n" for key, value in dag_kwargs.items())
    return (
        "import pendulum\n"
        "from tradewind.sdk import DAG\n"
        "from tradewind.sdk.operators.empty import EmptyOperator\n\n"
        "with DAG(\n"
        f"    dag_id={dag_id!r},\n"
        "    schedule=None,\n"
        '    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),\n'
        f"{kwargs}"
        "):\n"
        "    previous = None\n"
        f"    for i in range({tasks}):\n"
        '        task = EmptyOperator(task_id=f"t{i}")\n'
        "        if previous is not None:\n"
        "            previous >> task\n"
        "        previous = task\n"
    ) + extra
