"""Every hostile or broken upload is refused with a message naming the member and the rule, and leaves no row
and no file behind."""

from __future__ import annotations

import io
import os
import re
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from scheduler.bundles import upload_bundle
from tenants import services
from tradewind.errors import Invalid

from .conftest import ACTOR, NO_ROWS, make_tar, make_zip, rows_of, stored_files, write_tree

pytestmark = pytest.mark.django_db

GOOD = b"print('not a DAG, just a support file')\n"


def refuse(tenant, store: Path, source, message: str, **kwargs) -> None:
    """Upload `source` and check the refusal: the message matches, and nothing changed."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    with pytest.raises(Invalid, match=message):
        upload_bundle(tenant=tenant, actor=ACTOR, source=source, **kwargs)
    assert rows_of(tenant) == NO_ROWS
    assert stored_files(store) == []


def zip_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix: the high 16 bits of external_attr are the file mode
    info.external_attr = mode << 16
    return info


def tar_info(name: str, kind: bytes, **fields) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (make_zip([("/etc/evil.py", GOOD)]), "archive member '/etc/evil.py' has an absolute path"),
        (make_tar([("/etc/evil.py", GOOD)]), "archive member '/etc/evil.py' has an absolute path"),
        (make_zip([("../x.py", GOOD)]), re.escape("archive member '../x.py' escapes the bundle")),
        (make_tar([("../x.py", GOOD)]), re.escape("archive member '../x.py' escapes the bundle")),
        (make_zip([("a/../../x.py", GOOD)]), re.escape("archive member 'a/../../x.py' escapes the bundle")),
        (make_zip([("ok.py", GOOD), ("a\\..\\x.py", GOOD)]), "has a backslash in its name"),
    ],
    ids=["zip-absolute", "tar-absolute", "zip-dotdot", "tar-dotdot", "zip-nested-dotdot", "zip-backslash"],
)
def test_paths_outside_the_bundle_are_refused(tenant, bundle_store, archive, message):
    refuse(tenant, bundle_store, archive, message)


def test_zip_symlink_is_refused(tenant, bundle_store):
    archive = make_zip([("dag.py", GOOD), (zip_info("a", stat.S_IFLNK | 0o777), b"/etc/passwd")])
    refuse(tenant, bundle_store, archive, "symlink 'a' is not allowed")


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (tar_info("a", tarfile.SYMTYPE, linkname="/etc/passwd"), "symlink 'a' is not allowed"),
        (tar_info("h", tarfile.LNKTYPE, linkname="dag.py"), "hard link 'h' is not allowed"),
        (
            tar_info("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3),
            "device file 'dev/null' is not allowed",
        ),
        (tar_info("disk", tarfile.BLKTYPE, devmajor=8, devminor=0), "device file 'disk' is not allowed"),
        (tar_info("pipe", tarfile.FIFOTYPE), "fifo 'pipe' is not allowed"),
    ],
    ids=["symlink", "hardlink", "char-device", "block-device", "fifo"],
)
def test_tar_links_and_special_files_are_refused(tenant, bundle_store, member, message):
    refuse(tenant, bundle_store, make_tar([("dag.py", GOOD), member]), message)


def test_zip_device_mode_is_refused(tenant, bundle_store):
    archive = make_zip([(zip_info("tty", stat.S_IFCHR | 0o666), b"")])
    refuse(tenant, bundle_store, archive, "device file 'tty' is not allowed")


def test_directory_with_symlink_or_fifo_is_refused(tenant, bundle_store, tmp_path):
    write_tree(tmp_path / "repo", {"dag.py": "x = 1\n"})
    os.symlink("/etc/passwd", tmp_path / "repo" / "passwd")
    refuse(tenant, bundle_store, tmp_path / "repo", "symlink 'passwd' is not allowed")
    write_tree(tmp_path / "repo2", {"dag.py": "x = 1\n"})
    os.mkfifo(tmp_path / "repo2" / "pipe")
    refuse(tenant, bundle_store, tmp_path / "repo2", "fifo 'pipe' is not allowed")


def test_zip_bomb_is_refused_before_it_is_inflated(tenant, bundle_store):
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("bomb.bin", "w", force_zip64=True) as member,
    ):
        for _ in range(120):
            member.write(bytes(1 << 20))
    assert len(buffer.getvalue()) < 1 << 20  # 120 MB of zeros in well under 1 MB
    refuse(tenant, bundle_store, buffer.getvalue(), "bundle is 120 MB, above the tenant's quota of 100 MB")


def test_zip_lying_about_its_sizes_is_refused(tenant, bundle_store):
    """A central directory that declares a tiny size while the data inflates to much more: only the
    declared bytes are ever written, and the mismatch is caught (the checksum does not match)."""
    data = bytearray(make_zip([("big.bin", bytes(5 << 20))]))
    real = (5 << 20).to_bytes(4, "little")
    assert data.count(real) == 2  # local header and central directory
    data[:] = data.replace(real, (1000).to_bytes(4, "little"))
    refuse(
        tenant, bundle_store, bytes(data), "archive member 'big.bin' cannot be read, the archive is corrupt"
    )


def test_tar_gz_bomb_is_refused_from_its_header(tenant, bundle_store):
    small = services.create_tenant(slug="small", max_bundle_bytes=1 << 20)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("bomb.bin")
        info.size = 50 << 20
        archive.addfile(info, io.BytesIO(bytes(info.size)))
    refuse(small, bundle_store, buffer.getvalue(), "bundle is 50 MB, above the tenant's quota of 1 MB")


def test_many_small_members_over_quota_are_refused(bundle_store, db):
    small = services.create_tenant(slug="small", max_bundle_bytes=1 << 20)
    members = [(f"part{i}.bin", os.urandom(400 * 1024)) for i in range(3)]
    refuse(small, bundle_store, make_tar(members), r"bundle is 1\.2 MB, above the tenant's quota of 1 MB")
    refuse(small, bundle_store, make_zip(members), r"bundle is 1\.2 MB, above the tenant's quota of 1 MB")


def test_directory_over_quota_is_refused(bundle_store, db, tmp_path):
    small = services.create_tenant(slug="small", max_bundle_bytes=1000)
    write_tree(tmp_path, {"a.py": "x" * 600, "b.py": "y" * 600})
    refuse(small, bundle_store, tmp_path, "bundle is 1.2 KB, above the tenant's quota of 1000 bytes")


def test_too_many_files_are_refused(tenant, bundle_store):
    archive = make_zip([(f"f{i:04d}.txt", b"") for i in range(6000)])
    refuse(tenant, bundle_store, archive, "archive has 6000 files, above the limit of 5000")


def test_file_limit_comes_from_the_setting(tenant, bundle_store, settings, tmp_path):
    settings.TRADEWIND_BUNDLE_MAX_FILES = 5
    members = [(f"f{i}.txt", b"x") for i in range(6)]
    refuse(tenant, bundle_store, make_tar(members), "archive has more than 5 files, above the limit of 5")
    write_tree(tmp_path, {name: data for name, data in members})
    refuse(tenant, bundle_store, tmp_path, "directory has 6 files, above the limit of 5")


def test_non_utf8_names_are_refused(tenant, bundle_store, tmp_path):
    raw = bytearray(make_zip([("ok.py", GOOD), ("cafX.py", GOOD)]))
    raw[:] = raw.replace(b"cafX", b"caf\xe9")
    refuse(
        tenant, bundle_store, bytes(raw), re.escape("archive member name b'caf\\xe9.py' is not valid UTF-8")
    )
    archive = make_tar([("caf\udce9.py", GOOD)])
    refuse(tenant, bundle_store, archive, re.escape("archive member name b'caf\\xe9.py' is not valid UTF-8"))
    (tmp_path / "repo").mkdir()
    with open(os.path.join(os.fsencode(tmp_path / "repo"), b"caf\xe9.py"), "wb") as handle:
        handle.write(GOOD)
    refuse(tenant, bundle_store, tmp_path / "repo", re.escape("file name b'caf\\xe9.py' is not valid UTF-8"))


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (make_zip([("dag.py", GOOD * 100)])[:-30], "the archive is corrupt"),
        (make_zip([("dag.py", os.urandom(4000))])[:2000], "the archive is corrupt"),
        (make_tar([("dag.py", os.urandom(4000))])[:2000], "the archive is corrupt"),
        (b"\x1f\x8b" + os.urandom(3000), "the archive is corrupt"),
        (os.urandom(3000), "the upload is not a .zip or .tar.gz archive, a directory or a .py file"),
    ],
    ids=["zip-truncated-directory", "zip-truncated", "tar-gz-truncated", "gzip-garbage", "not-an-archive"],
)
def test_corrupt_archives_are_refused(tenant, bundle_store, archive, message):
    refuse(tenant, bundle_store, archive, message)


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (make_zip([]), "the archive contains no files"),
        (make_tar([]), "the archive contains no files"),
        (make_zip([("empty/", b""), ("__pycache__/x.pyc", b"")]), "the archive contains no files"),
    ],
    ids=["zip", "tar-gz", "only-directories-and-byte-code"],
)
def test_empty_archives_are_refused(tenant, bundle_store, archive, message):
    refuse(tenant, bundle_store, archive, message)


def test_empty_directory_is_refused(tenant, bundle_store, tmp_path):
    refuse(tenant, bundle_store, tmp_path, "the directory contains no files")


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (make_zip([("a.py", GOOD), ("a.py", GOOD)]), "archive member 'a.py' appears twice"),
        (make_tar([("a.py", GOOD), ("./a.py", GOOD)]), "archive member 'a.py' appears twice"),
        (make_tar([("a", GOOD), ("a/b.py", GOOD)]), "archive member 'a/b.py' is inside 'a', which is a file"),
        (make_zip([("a/b.py", GOOD), ("a", GOOD)]), "archive member 'a' is both a file and a directory"),
    ],
    ids=["zip-twice", "tar-twice-normalised", "file-then-directory", "directory-then-file"],
)
def test_duplicate_members_are_refused(tenant, bundle_store, archive, message):
    refuse(tenant, bundle_store, archive, message)


def test_refused_upload_of_an_existing_tenant_changes_nothing(tenant, bundle_store, tmp_path):
    """A second, hostile upload leaves the tenant's accepted version, its rows and its files as they were."""
    write_tree(tmp_path, {"notes.txt": "support file only\n"})
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    before_rows, before_files = rows_of(tenant), stored_files(bundle_store)
    with pytest.raises(Invalid, match="escapes the bundle"):
        upload_bundle(tenant=tenant, actor=ACTOR, source=io.BytesIO(make_zip([("../x.py", GOOD)])))
    assert rows_of(tenant) == before_rows
    assert stored_files(bundle_store) == before_files


def test_bad_bundle_name_is_refused(tenant, bundle_store, tmp_path):
    write_tree(tmp_path, {"notes.txt": "x\n"})
    refuse(tenant, bundle_store, tmp_path, "bundle name '../x' must be", bundle_name="../x")
