"""Directory, single-file, zip and tar.gz sources; content-addressed, read-only storage."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from scheduler.bundles import bundle_root, upload_bundle
from scheduler.models import Bundle, BundleVersion, Dag

from .conftest import ACTOR, dag_source, make_tar, make_zip, write_tree

pytestmark = pytest.mark.django_db

REPO = {
    "dags/etl.py": dag_source("etl"),
    "dags/report.py": dag_source("report"),
    "dags/sql/query.sql": "select 1;\n",
    "README.md": "# our DAGs\n",
}


def repo_members() -> list[tuple[str, bytes]]:
    return [(name, content.encode()) for name, content in REPO.items()]


class Unseekable(io.RawIOBase):
    """A stream that can only be read forward, like a request body or a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def check_repo_version(tenant, result) -> None:
    assert result.activated
    assert result.dags == ["etl", "report"]
    assert result.import_errors == {}
    version = result.version
    assert version.number == 1 and version.state == BundleVersion.State.ACTIVE
    assert version.file_count == 4
    assert version.size_bytes == sum(len(content.encode()) for content in REPO.values())
    root = bundle_root(version)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == sorted(REPO)
    assert (root / "dags/sql/query.sql").read_text() == "select 1;\n"
    assert Bundle.objects.for_tenant(tenant).get().active_version == version
    dags = Dag.objects.for_tenant(tenant).order_by("dag_id")
    assert [(d.dag_id, d.fileloc, d.is_active) for d in dags] == [
        ("etl", "dags/etl.py", True),
        ("report", "dags/report.py", True),
    ]


def test_directory_source(tenant, tmp_path):
    write_tree(tmp_path, {**REPO, "dags/__pycache__/etl.cpython-311.pyc": b"\0", ".git/HEAD": "ref\n"})
    check_repo_version(tenant, upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path))


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz", ".tgz"])
def test_archive_path_sources(tenant, tmp_path, suffix):
    data = make_zip(repo_members()) if suffix == ".zip" else make_tar(repo_members())
    path = tmp_path / f"repo{suffix}"
    path.write_bytes(data)
    check_repo_version(tenant, upload_bundle(tenant=tenant, actor=ACTOR, source=path))


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "tar.bz2", "tar"])
def test_archive_file_object_sources(tenant, kind):
    if kind == "zip":
        data = make_zip(repo_members())
    else:
        data = make_tar(repo_members(), mode={"tar.gz": "w:gz", "tar.bz2": "w:bz2", "tar": "w"}[kind])
    check_repo_version(tenant, upload_bundle(tenant=tenant, actor=ACTOR, source=io.BytesIO(data)))


def test_unseekable_stream_source(tenant):
    stream = io.BufferedReader(Unseekable(make_zip(repo_members())))
    check_repo_version(tenant, upload_bundle(tenant=tenant, actor=ACTOR, source=stream))


def test_archive_with_a_top_level_directory_and_dot_slash_names(tenant):
    members = [(f"./{name}", data) for name, data in repo_members()]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.addfile(_dir_info("."))
        archive.addfile(_dir_info("./dags"))
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o4777  # setuid and world-writable in the archive: the store ignores modes
            archive.addfile(info, io.BytesIO(data))
    result = upload_bundle(tenant=tenant, actor=ACTOR, source=io.BytesIO(buffer.getvalue()))
    check_repo_version(tenant, result)
    assert stat.S_IMODE((bundle_root(result.version) / "dags/etl.py").stat().st_mode) == 0o444


def _dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def test_single_python_file_source(tenant, tmp_path):
    path = tmp_path / "only_dag.py"
    path.write_text(dag_source("only"))
    result = upload_bundle(tenant=tenant, actor=ACTOR, source=path)
    assert result.dags == ["only"]
    assert sorted(os.listdir(bundle_root(result.version))) == ["only_dag.py"]
    assert Dag.objects.for_tenant(tenant).get().fileloc == "only_dag.py"


def test_stored_files_are_read_only(tenant, tmp_path):
    write_tree(tmp_path, REPO)
    root = bundle_root(upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path).version)
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o555 if path.is_dir() else 0o444), path
    # Sandboxed children run as other users: they can reach a version by its hash, not list the tenant's.
    assert stat.S_IMODE(root.parent.stat().st_mode) == 0o711


def test_same_content_as_the_active_version_changes_nothing(tenant, tmp_path):
    write_tree(tmp_path, REPO)
    first = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    again = upload_bundle(tenant=tenant, actor=ACTOR, source=io.BytesIO(make_zip(repo_members())))
    assert again.version == first.version
    assert not again.activated
    assert again.dags == ["etl", "report"]
    assert BundleVersion.objects.for_tenant(tenant).count() == 1


def test_same_content_as_an_older_version_is_a_new_version_in_the_same_directory(tenant, tmp_path):
    write_tree(tmp_path, REPO)
    v1 = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path).version
    root = bundle_root(v1)
    inode = root.stat().st_ino
    write_tree(tmp_path, {"README.md": "changed\n"})
    v2 = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path).version
    write_tree(tmp_path, REPO)
    v3 = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path).version
    assert [v.number for v in (v1, v2, v3)] == [1, 2, 3]
    assert v3.content_hash == v1.content_hash != v2.content_hash
    assert bundle_root(v3) == root
    assert root.stat().st_ino == inode  # never rewritten
    assert len(os.listdir(root.parent)) == 3  # the lock file and two version directories


def test_bundles_of_one_tenant_are_independent(tenant, tmp_path):
    write_tree(tmp_path / "a", {"a.py": dag_source("a")})
    write_tree(tmp_path / "b", {"b.py": dag_source("b")})
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path / "a", bundle_name="team-a")
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path / "b", bundle_name="team-b")
    (tmp_path / "a" / "a.py").write_text(dag_source("a2"))
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path / "a", bundle_name="team-a")
    active = dict(Dag.objects.for_tenant(tenant).values_list("dag_id", "is_active"))
    assert active == {"a": False, "a2": True, "b": True}


def test_a_dag_id_active_in_another_bundle_is_an_import_error(tenant, tmp_path):
    write_tree(tmp_path / "a", {"x.py": dag_source("shared")})
    write_tree(tmp_path / "b", {"y.py": dag_source("shared")})
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path / "a", bundle_name="team-a")
    result = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path / "b", bundle_name="team-b")
    assert result.dags == []
    assert result.import_errors == {"y.py": "DAG 'shared' is already defined in bundle 'team-a' (x.py)"}
    assert Dag.objects.for_tenant(tenant).get(dag_id="shared").bundle.name == "team-a"


def test_missing_source_is_refused(tenant, tmp_path):
    from tradewind.errors import Invalid

    with pytest.raises(Invalid, match="is not a file or directory"):
        upload_bundle(tenant=tenant, actor=ACTOR, source=Path(tmp_path / "nope.zip"))


def test_zip_with_directory_entries_and_unix_modes(tenant):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("dags/"), b"")
        for name, data in repo_members():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            archive.writestr(info, data)
    check_repo_version(
        tenant, upload_bundle(tenant=tenant, actor=ACTOR, source=io.BytesIO(buffer.getvalue()))
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_to_one_tenant_get_distinct_versions(tenant, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    for index in range(3):
        write_tree(tmp_path / f"r{index}", {"a.py": dag_source("a", tasks=index + 1)})

    def upload(index: int) -> int:
        try:
            return upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path / f"r{index}").version.number
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=3) as pool:
        numbers = sorted(pool.map(upload, range(3)))
    assert numbers == [1, 2, 3]
    assert Dag.objects.for_tenant(tenant).get().versions.count() == 3


def test_a_successful_upload_leaves_no_staging_directory(tenant, tmp_path, bundle_store):
    write_tree(tmp_path, REPO)
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    assert os.listdir(bundle_store / ".staging") == []
