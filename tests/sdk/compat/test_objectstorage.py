"""ObjectStoragePath (`airflow.io.path`, `airflow.sdk`) on real local files; remote schemes fail clearly."""

from __future__ import annotations

import os
import sys

import pendulum
import pytest

from tradewind.sdk.execution import decode_value, encode_value


@pytest.fixture
def Path():  # noqa: N802 - the class under test, named as DAG files name it
    from airflow.io.path import ObjectStoragePath

    return ObjectStoragePath


@pytest.fixture(params=["url", "plain"])
def base(request, tmp_path, Path):
    """A folder, as a file:// URL and as a plain path: both reach the same files."""
    return Path(f"file://{tmp_path}") if request.param == "url" else Path(str(tmp_path))


def test_reads_and_writes_files_with_the_pathlib_api(base, tmp_path):
    folder = base / "data" / "2024"
    folder.mkdir(parents=True)
    report = folder / "report.csv"
    assert report.write_text("a,b\n1,2\n") == 8
    (folder / "blob.bin").write_bytes(b"\x00\x01")
    with (folder / "stream.txt").open("w") as fh:
        fh.write("streamed")

    assert (tmp_path / "data" / "2024" / "report.csv").read_text() == "a,b\n1,2\n"
    assert report.read_text() == "a,b\n1,2\n" and (folder / "blob.bin").read_bytes() == b"\x00\x01"
    with (folder / "stream.txt").open("rb") as fh:
        assert fh.read() == b"streamed"
    assert report.exists() and report.is_file() and folder.is_dir() and not (folder / "nope").exists()
    assert report.size() == 8 and report.stat().st_size == 8
    assert sorted(p.name for p in folder.iterdir()) == ["blob.bin", "report.csv", "stream.txt"]
    assert [p.name for p in base.glob("data/*/*.csv")] == ["report.csv"]
    assert [p.name for p in base.rglob("*.bin")] == ["blob.bin"]
    assert all(p.protocol == base.protocol for p in folder.iterdir())

    (folder / "empty").touch()
    assert (folder / "empty").read_text() == ""
    report.unlink()
    report.unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError):
        report.read_text()
    with open(folder / "blob.bin", "rb") as fh:  # a local path is os.PathLike
        assert fh.read() == b"\x00\x01"


def test_parses_urls_as_airflow_does(Path, tmp_path):
    local = Path("file:///tmp/data/report.csv")
    assert str(local) == "file:///tmp/data/report.csv" and local.protocol == "file"
    assert local.path == "/tmp/data/report.csv" and local.key == "tmp/data/report.csv"
    assert (local.name, local.stem, local.suffix) == ("report.csv", "report", ".csv")
    assert local.parent == Path("file:///tmp/data") and local.parent != Path("/tmp/data")
    assert os.fspath(local) == "/tmp/data/report.csv"
    assert Path("file://include/archive/").key == "include/archive/"  # relative, as fsspec reads it

    remote = Path("s3://aws_default@my-bucket/poems/") / "raven.txt"
    assert str(remote) == "s3://my-bucket/poems/raven.txt" and remote.conn_id == "aws_default"
    assert (remote.protocol, remote.bucket, remote.container) == ("s3", "my-bucket", "my-bucket")
    assert remote.key == "poems/raven.txt" and remote.path == "my-bucket/poems/raven.txt"
    assert remote.namespace == "s3://my-bucket" and remote.parent.key == "poems"
    assert Path("gs://b/k", conn_id="gcp").conn_id == "gcp"
    assert Path(Path("s3://c@b/k"), "more").conn_id == "c"
    assert Path("b/k", scheme="s3") == Path("s3://b/k")
    assert sorted([Path("/b"), Path("/a")]) == [Path("/a"), Path("/b")]


def test_an_asset_or_dataset_names_its_file(Path, tmp_path):
    from airflow.datasets import Dataset

    path = Path(Dataset(f"file://{tmp_path}/out.txt"))
    path.write_text("This is a test!")
    assert (tmp_path / "out.txt").read_text() == "This is a test!"


@pytest.mark.parametrize("url", ["s3://bucket/key.csv", "gs://conn@bucket/key", "abfs://container/x"])
def test_remote_storage_fails_naming_the_scheme(Path, url):
    path = Path(url)
    scheme = url.split(":")[0]
    for access in (path.read_text, path.exists, lambda: path.open("rb"), path.iterdir, lambda: path.fs):
        with pytest.raises(ValueError, match=f"no filesystem for the '{scheme}' scheme"):
            result = access()
            list(result)  # iterdir is lazy


def test_copy_move_and_rename(base, tmp_path):
    source = base / "in" / "a.txt"
    source.parent.mkdir()
    source.write_text("A")

    source.copy(base / "out/")  # a folder by its trailing slash: created, the file copied into it
    assert (tmp_path / "out" / "a.txt").read_text() == "A"
    source.copy(base / "out" / "b.txt")
    assert (tmp_path / "out" / "b.txt").read_text() == "A"
    source.copy(str(base / "copy.txt"))
    assert (tmp_path / "copy.txt").read_text() == "A"

    with pytest.raises(IsADirectoryError):
        (base / "in").copy(base / "tree")
    (base / "in").copy(base / "tree", recursive=True)
    assert (tmp_path / "tree" / "a.txt").read_text() == "A"

    (base / "out" / "b.txt").move(base / "moved.txt")
    assert (tmp_path / "moved.txt").read_text() == "A" and not (tmp_path / "out" / "b.txt").exists()
    (base / "moved.txt").copy_into(base / "in")
    assert (tmp_path / "in" / "moved.txt").exists()
    with pytest.raises(NotADirectoryError):
        source.copy_into(base / "copy.txt")

    renamed = (base / "copy.txt").rename(base / "renamed.txt")
    assert renamed == base / "renamed.txt" and renamed.read_text() == "A"
    (base / "tree").rmdir(recursive=True)
    assert not (tmp_path / "tree").exists()


def test_a_relative_rename_target_stays_in_the_folder_of_a_url_path(Path, tmp_path):
    (tmp_path / "poem.txt").write_text("x")
    renamed = Path(f"file://{tmp_path}/poem.txt").replace("0_poem.txt")
    assert renamed == Path(f"file://{tmp_path}/0_poem.txt") and (tmp_path / "0_poem.txt").exists()


def test_read_block_follows_fsspec(Path, tmp_path):
    path = Path(f"file://{tmp_path}/lines.txt")
    path.write_bytes(b"Alice, 100\nBob, 200\nCharlie, 300")
    assert path.read_block(0, 13) == b"Alice, 100\nBo"
    assert path.read_block(0, 13, delimiter=b"\n") == b"Alice, 100\nBob, 200\n"
    assert path.read_block(0, None, delimiter=b"\n") == b"Alice, 100\nBob, 200\nCharlie, 300"
    assert path.read_block(5, 10, delimiter=b"\n") == b"Bob, 200\n"
    assert path.read_block(offset=0, length=None).decode() == "Alice, 100\nBob, 200\nCharlie, 300"


def test_extensions_and_serialization(Path, tmp_path):
    path = Path(f"file://{tmp_path}/a.txt")
    path.write_text("one")
    key, checksum = path.ukey(), path.checksum()
    assert path.samefile(str(tmp_path / "a.txt")) and path.samestore(Path("file:///elsewhere"))
    os.utime(tmp_path / "a.txt", ns=(0, 0))
    assert path.ukey() != key and path.checksum() != checksum
    with pytest.raises(NotImplementedError):
        path.sign()
    data = Path("s3://conn@bucket/key").serialize()
    assert data == {"path": "s3://bucket/key", "conn_id": "conn", "kwargs": {}}
    assert Path.deserialize(data, 1) == Path("s3://conn@bucket/key")


def test_fs_needs_fsspec(Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fsspec", None)
    with pytest.raises(ModuleNotFoundError, match="fsspec is not installed"):
        _ = Path("/tmp").fs


def test_paths_cross_xcom(Path):
    paths = [Path("file:///tmp/x.csv"), Path("s3://conn@bucket/dir/")]
    decoded = decode_value(encode_value(paths))
    assert decoded == paths and decoded[1].conn_id == "conn" and decoded[1].key == "dir/"


def test_a_dag_lists_files_and_maps_over_them(run, client, tmp_path):
    from airflow.decorators import dag, task
    from airflow.io.path import ObjectStoragePath

    (tmp_path / "poems").mkdir()
    for name, text in (("raven.txt", "nevermore"), ("panther.txt", "stäbe")):
        (tmp_path / "poems" / name).write_text(text, encoding="utf-8")
    base = ObjectStoragePath(f"file://{tmp_path}/poems/")
    archive = ObjectStoragePath(f"file://{tmp_path}/archive/")

    @dag(start_date=pendulum.datetime(2024, 1, 1), schedule=None)
    def object_storage():
        @task
        def list_files(base_path: ObjectStoragePath) -> list[ObjectStoragePath]:
            return sorted(f for f in base_path.iterdir() if f.is_file())

        @task
        def read(file: ObjectStoragePath, dst: ObjectStoragePath) -> str:
            file.copy(dst=dst)
            return file.read_text(encoding="utf-8")

        read.partial(dst=archive).expand(file=list_files(base_path=base))

    built = object_storage()
    assert run(built, "list_files")["state"] == "success"
    for index in (0, 1):
        outcome = run(built, "read", map_index=index)
        assert outcome["state"] == "success", outcome["traceback"]
    texts = [client.xcoms[("object_storage", client.run_id, "read", i, "return_value")] for i in (0, 1)]
    assert texts == ["stäbe", "nevermore"]
    assert sorted(os.listdir(tmp_path / "archive")) == ["panther.txt", "raven.txt"]
