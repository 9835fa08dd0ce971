"""DAG repositories: archive checks, content-addressed storage, upload, activation and rollback.

An upload is staged in a private directory on the same filesystem as the store, and every member is checked
before a byte of it is written (name, type, count, size; the size is counted again while the bytes are
written, so a lying header cannot smuggle a compression bomb through). Only a fully valid tree is renamed,
read-only, into the store at `<BUNDLE_ROOT>/<tenant id>/<content hash>`: a rejected upload leaves no file and
no row behind, and the same content is stored once per tenant and never rewritten.

A new BundleVersion row is made unless the upload's content is the bundle's active version already (then the
upload changes nothing and answers with the active version). Its DAG files are parsed in the sandbox
(scheduler.dagparsing), and unless the upload is validate-only the version is activated in the same
transaction: Bundle.active_version, Dag rows, each DAG's active DagVersion, DAGs gone from it deactivated.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import logging
import lzma
import math
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from scheduler import dagparsing
from scheduler.models import Bundle, BundleVersion, Dag, DagVersion
from tenants.models import Tenant
from tradewind.accounts.actors import Actor
from tradewind.audit import services as audit
from tradewind.audit.actions import AuditAction
from tradewind.errors import Conflict, Invalid, NotFound

log = logging.getLogger(__name__)

MAX_PATH_CHARS = 1000  # ParseImportError.filename and Dag.fileloc hold at most this
CHUNK = 1 << 20
# Never part of a bundle: byte code and version-control metadata of the uploader's checkout.
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")
STAGING = ".staging"
STALE_STAGING_S = 24 * 3600
BUNDLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
DEMO_DAGS = Path(__file__).resolve().parent / "demo_dags"


@dataclass
class UploadResult:
    """What an upload did: the version (a new one, or the active one when the content was unchanged),
    whether it is now active, the DAGs it defines and the import errors of its files (file -> message)."""

    version: BundleVersion
    activated: bool
    dags: list[str]
    import_errors: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StagedTree:
    """A checked tree of files in a staging directory: path -> sha256 of the content, and the total size."""

    path: Path
    files: dict[str, str]
    size_bytes: int

    @property
    def content_hash(self) -> str:
        """sha256 of the sorted listing of paths and content hashes: equal trees, equal hash."""
        listing = "".join(f"{name}\0{digest}\n" for name, digest in sorted(self.files.items()))
        return hashlib.sha256(listing.encode()).hexdigest()


def bundle_root(version: BundleVersion) -> Path:
    """The directory holding the version's files (read-only; the sandbox's bundle root)."""
    return _tenant_store(version.tenant_id) / version.content_hash


def upload_bundle(
    *,
    tenant: Tenant,
    actor: Actor,
    source: Path | BinaryIO,
    bundle_name: str = "default",
    validate_only: bool = False,
    pause_new_dags: bool = False,
    secrets_tenant_id: int | None = None,
) -> UploadResult:
    """Check, store, parse and (unless `validate_only`) activate a new version of the tenant's bundle.

    `source` is a .zip / .tar.gz / .tgz archive (a path or a binary file object), a directory or a single .py
    file. Invalid (nothing changed: no rows, no files) when the source breaks a rule: the tenant's
    max_bundle_bytes (uncompressed), TRADEWIND_BUNDLE_MAX_FILES, absolute paths, "..", links, devices, fifos,
    names that are not UTF-8, duplicate names, a corrupt or empty archive, more DAGs than the tenant's
    max_dags. Files that fail to import do not reject the upload: they are reported in `import_errors`.
    `secrets_tenant_id` (dags test --tenant): whose variables and connections the files read while parsed.
    Call it outside a transaction: parsing takes seconds and must not hold the database's locks.
    """
    name = _bundle_name(bundle_name)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    with _tenant_lock(tenant.pk):
        staged = stage_source(source, quota_bytes=tenant.max_bundle_bytes, max_files=_max_files())
        try:
            bundle = (
                Bundle.objects.for_tenant(tenant).filter(name=name).select_related("active_version").first()
            )
            active = bundle.active_version if bundle is not None else None
            if active is not None and active.content_hash == staged.content_hash:
                return _unchanged(active)
            root, created = _store(staged, tenant.pk)
        finally:
            _remove_tree(staged.path)
        timings["stage_s"] = time.perf_counter() - started
        try:
            parsed = dagparsing.parse_bundle(
                tenant=tenant, root=root, files=staged.files, secrets_tenant_id=secrets_tenant_id
            )
            timings["parse_s"] = parsed.duration_s
            timings["parsed_files"] = len(parsed.parsed)
            recorded = time.perf_counter()
            with transaction.atomic():
                result = _record_upload(
                    tenant=tenant,
                    actor=actor,
                    bundle_name=name,
                    staged=staged,
                    parsed=parsed,
                    validate_only=validate_only,
                    pause_new_dags=pause_new_dags,
                )
            timings["record_s"] = time.perf_counter() - recorded
        except BaseException:
            if (
                created
                and not BundleVersion.objects.filter(tenant=tenant, content_hash=staged.content_hash).exists()
            ):
                _remove_tree(root)
            raise
    timings["total_s"] = time.perf_counter() - started
    result.timings = timings
    log.info(
        "bundle uploaded",
        extra={"tenant_id": tenant.pk, "bundle": name, "version": result.version.number, **timings},
    )
    return result


@transaction.atomic
def activate_version(*, tenant: Tenant, actor: Actor, version: BundleVersion) -> None:
    """Make `version` its bundle's active version: its DAG versions become the DAGs' active versions, DAGs
    absent from it are deactivated. NotFound for another tenant's version; Invalid above the tenant's
    max_dags; Conflict when one of its DAGs is active in another bundle of the tenant."""
    if version.tenant_id != tenant.pk:
        raise NotFound("no such bundle version")
    bundle = Bundle.objects.for_tenant(tenant).select_for_update().get(pk=version.bundle_id)
    previous = bundle.active_version
    _activate(tenant=tenant, bundle=bundle, version=version)
    audit.record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.BUNDLE_ACTIVATED,
        obj=version,
        detail=_version_detail(version, previous),
    )


@transaction.atomic
def rollback(*, tenant: Tenant, actor: Actor, bundle: Bundle, number: int) -> BundleVersion:
    """Re-activate the bundle's version `number` (normally an earlier one) and return it: its DAG versions
    become active again and DAGs absent from it are deactivated. NotFound when the bundle has no such
    version; Conflict when it is already the active one."""
    locked = Bundle.objects.for_tenant(tenant).select_for_update().filter(pk=bundle.pk).first()
    if locked is None:
        raise NotFound("no such bundle")
    version = BundleVersion.objects.for_tenant(tenant).filter(bundle=locked, number=number).first()
    if version is None:
        raise NotFound(f"bundle {locked.name!r} has no version {number}")
    previous = locked.active_version
    if previous is not None and previous.pk == version.pk:
        raise Conflict(f"version {number} is already the active version of bundle {locked.name!r}")
    _activate(tenant=tenant, bundle=locked, version=version)
    audit.record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.BUNDLE_ROLLED_BACK,
        obj=version,
        detail=_version_detail(version, previous),
    )
    return version


def load_demo_bundle(tenant: Tenant) -> UploadResult | None:
    """Upload our example repository (scheduler/demo_dags) to `tenant` if it has no bundle yet; None when
    it already has one (the demo is loaded on the first start only)."""
    if Bundle.objects.for_tenant(tenant).exists():
        return None
    return upload_bundle(tenant=tenant, actor=Actor.system("demo loader"), source=DEMO_DAGS)


def delete_bundle_files(tenant_id: int) -> None:
    """Remove every stored bundle file of a tenant (after the tenant itself was deleted, e.g. the
    ephemeral tenant of `dags test`)."""
    _remove_tree(_tenant_store(tenant_id))


# --- Staging: every rule, before anything is stored ------------------------------------------------------


def stage_source(source: Path | BinaryIO, *, quota_bytes: int, max_files: int) -> StagedTree:
    """Copy `source` (archive path or file object, directory, or .py file) into a new staging directory,
    checking every rule; Invalid (and no staging directory left) when one is broken."""
    staging = _staging_root()
    _clean_stale_staging(staging)
    path = Path(tempfile.mkdtemp(prefix="upload-", dir=staging))
    try:
        stage = _Stage(path, quota_bytes=quota_bytes, max_files=max_files)
        _fill(stage, source)
        if not stage.files:
            raise Invalid(f"the {stage.kind} contains no files")
        return StagedTree(path=path, files=dict(stage.files), size_bytes=stage.size)
    except BaseException:
        _remove_tree(path)
        raise


class _Stage:
    """A staging directory being filled: names, duplicates, counts and sizes are checked here."""

    def __init__(self, path: Path, *, quota_bytes: int, max_files: int) -> None:
        self.path = path
        self.quota = quota_bytes
        self.max_files = max_files
        self.kind = "archive"
        self.files: dict[str, str] = {}
        self.dirs: set[str] = set()
        self.size = 0

    @property
    def member(self) -> str:
        return "archive member" if self.kind == "archive" else "file"

    def clean(self, raw: str) -> str:
        """The member's normalised path inside the bundle ("" for the root itself); Invalid if unsafe."""
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:
            shown = raw.encode("utf-8", "surrogateescape")
            raise Invalid(f"{self.member} name {shown!r} is not valid UTF-8") from None
        if "\\" in raw:
            raise Invalid(f"{self.member} {raw!r} has a backslash in its name (paths use '/')")
        if any(ord(char) < 32 or ord(char) == 127 for char in raw):
            raise Invalid(f"{self.member} {raw!r} has a control character in its name")
        if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
            raise Invalid(f"{self.member} {raw!r} has an absolute path")
        parts = [part for part in raw.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise Invalid(f"{self.member} {raw!r} escapes the bundle")
        name = "/".join(parts)
        if len(name) > MAX_PATH_CHARS:
            raise Invalid(
                f"{self.member} {name[:60]!r}... has a path longer than {MAX_PATH_CHARS} characters"
            )
        return name

    def expect(self, count: int, total_bytes: int) -> None:
        """Reject at once when the counts known before extraction already break a limit."""
        if count > self.max_files:
            raise Invalid(f"{self.kind} has {count} files, above the limit of {self.max_files}")
        if total_bytes > self.quota:
            raise self.over_quota(total_bytes)

    def over_quota(self, size: int) -> Invalid:
        return Invalid(f"bundle is {_size(size, up=True)}, above the tenant's quota of {_size(self.quota)}")

    def add_dir(self, name: str) -> None:
        if not name:
            return
        if name in self.files:
            raise Invalid(f"{self.member} {name!r} is both a file and a directory")
        self._claim_parents(name)
        self.dirs.add(name)

    def add_file(self, name: str, read: Callable[[int], bytes], declared_size: int | None) -> None:
        """Write one file, counting its bytes against the quota as they come (not as the header says)."""
        if not name:
            raise Invalid(f"{self.member} with an empty name")
        if name in self.files:
            raise Invalid(f"{self.member} {name!r} appears twice")
        if name in self.dirs:
            raise Invalid(f"{self.member} {name!r} is both a file and a directory")
        if len(self.files) >= self.max_files:
            raise Invalid(
                f"{self.kind} has more than {self.max_files} files, above the limit of {self.max_files}"
            )
        if declared_size is not None and self.size + declared_size > self.quota:
            raise self.over_quota(self.size + declared_size)
        self._claim_parents(name)
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        try:
            with open(target, "xb") as out:
                while chunk := read(CHUNK):
                    self.size += len(chunk)
                    if self.size > self.quota:
                        raise self.over_quota(self.size)
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as exc:
            raise Invalid(f"{self.member} {name!r} cannot be stored: {exc.strerror or exc}") from None
        self.files[name] = digest.hexdigest()

    def _claim_parents(self, name: str) -> None:
        for parent in PurePosixPath(name).parents:
            key = str(parent)
            if key == ".":
                continue
            if key in self.files:
                raise Invalid(f"{self.member} {name!r} is inside {key!r}, which is a file")
            self.dirs.add(key)


def _fill(stage: _Stage, source: Path | BinaryIO) -> None:
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.is_dir():
            stage.kind = "directory"
            _fill_from_directory(stage, path)
            return
        if not path.is_file():
            raise Invalid(f"{path} is not a file or directory")
        if path.suffix == ".py":
            stage.kind = "upload"
            with open(path, "rb") as handle:
                stage.add_file(stage.clean(path.name), handle.read, path.stat().st_size)
            return
        with open(path, "rb") as handle:
            _fill_from_archive(stage, handle)
        return
    _fill_from_archive(stage, source)


def _fill_from_directory(stage: _Stage, root: Path) -> None:
    found: list[tuple[str, Path, int]] = []

    def walk(directory: Path, prefix: str) -> None:
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                rel = f"{prefix}{entry.name}"
                name = stage.clean(rel)
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    if entry.name not in SKIPPED_DIRS:
                        stage.add_dir(name)
                        walk(Path(entry.path), f"{rel}/")
                elif stat.S_ISREG(st.st_mode):
                    if not entry.name.endswith(SKIPPED_SUFFIXES):
                        found.append((name, Path(entry.path), st.st_size))
                else:
                    raise Invalid(f"{_file_kind(st.st_mode)} {rel!r} is not allowed")

    walk(root, "")
    stage.expect(len(found), sum(size for _, _, size in found))
    for name, path, size in found:
        try:
            with open(path, "rb") as handle:
                stage.add_file(name, handle.read, size)
        except OSError as exc:
            raise Invalid(f"file {name!r} cannot be read: {exc.strerror or exc}") from None


def _fill_from_archive(stage: _Stage, handle: BinaryIO) -> None:
    with _seekable(handle, limit=2 * stage.quota + (1 << 20)) as data:
        head = data.read(512)
        data.seek(0)
        if head[:2] == b"PK" or zipfile.is_zipfile(data):
            data.seek(0)
            _fill_from_zip(stage, data)
        elif _looks_like_tar(head):
            data.seek(0)
            _fill_from_tar(stage, data)
        else:
            raise Invalid("the upload is not a .zip or .tar.gz archive, a directory or a .py file")


@contextlib.contextmanager
def _seekable(handle: BinaryIO, *, limit: int) -> Iterator[BinaryIO]:
    """`handle` itself when it can seek, else its bytes spooled to an anonymous temporary file."""
    seekable = getattr(handle, "seekable", None)
    if seekable is not None and seekable():
        yield handle
        return
    with tempfile.TemporaryFile() as spool:
        copied = 0
        while chunk := handle.read(CHUNK):
            copied += len(chunk)
            if copied > limit:
                raise Invalid(f"the upload is larger than {_size(limit)}, far above the tenant's quota")
            spool.write(chunk)
        spool.seek(0)
        yield spool


def _looks_like_tar(head: bytes) -> bool:
    compressed = head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00"))
    return compressed or head[257:262] == b"ustar"


CORRUPT = (zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError, gzip.BadGzipFile)


def _fill_from_zip(stage: _Stage, data: BinaryIO) -> None:
    try:
        archive = zipfile.ZipFile(data)
    except UnicodeDecodeError:
        raise Invalid("an archive member name is not valid UTF-8") from None
    except (*CORRUPT, OSError, ValueError) as exc:
        raise Invalid(f"the archive is corrupt: {exc}") from None
    with archive:
        members: list[tuple[str, zipfile.ZipInfo]] = []
        for info in archive.infolist():
            raw = _zip_name(info)
            name = stage.clean(raw)
            kind = _zip_kind(info)
            if kind != "file" and kind != "directory":
                raise Invalid(f"{kind} {raw!r} is not allowed")
            if kind == "directory":
                stage.add_dir(name)
            elif not _skipped(name):
                if info.flag_bits & 0x1:
                    raise Invalid(f"archive member {raw!r} is encrypted")
                members.append((name, info))
        stage.expect(len(members), sum(info.file_size for _, info in members))
        for name, info in members:
            try:
                with archive.open(info) as member:
                    stage.add_file(name, member.read, info.file_size)
            except (*CORRUPT, NotImplementedError, RuntimeError) as exc:
                raise Invalid(
                    f"archive member {name!r} cannot be read, the archive is corrupt: {exc}"
                ) from None


def _zip_name(info: zipfile.ZipInfo) -> str:
    """The member's name; without the UTF-8 flag zipfile decoded it as cp437, so undo that and insist on
    UTF-8 (what every current tool writes), keeping undecodable bytes as surrogates for the check."""
    if info.flag_bits & 0x800:
        return info.orig_filename
    return info.orig_filename.encode("cp437").decode("utf-8", "surrogateescape")


def _zip_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFDIR or (kind == 0 and info.filename.endswith("/")):
        return "directory"
    if kind in (0, stat.S_IFREG):
        return "file"
    return _file_kind(mode)


def _fill_from_tar(stage: _Stage, data: BinaryIO) -> None:
    try:
        # Streaming mode: members are read in order and never all held in memory; a size in a header is
        # checked against the quota before the member's (possibly bomb-compressed) bytes are inflated.
        with tarfile.open(fileobj=data, mode="r|*", errors="surrogateescape") as archive:
            for member in archive:
                raw = member.name
                name = stage.clean(raw)
                if member.isdir():
                    stage.add_dir(name)
                elif member.issym():
                    raise Invalid(f"symlink {raw!r} is not allowed")
                elif member.islnk():
                    raise Invalid(f"hard link {raw!r} is not allowed")
                elif member.ischr() or member.isblk():
                    raise Invalid(f"device file {raw!r} is not allowed")
                elif member.isfifo():
                    raise Invalid(f"fifo {raw!r} is not allowed")
                elif not member.isfile():
                    raise Invalid(f"archive member {raw!r} is not a regular file or directory")
                elif not _skipped(name):
                    reader = archive.extractfile(member)
                    assert reader is not None  # a regular file always has a reader
                    stage.add_file(name, reader.read, member.size)
    except CORRUPT as exc:
        raise Invalid(f"the archive is corrupt: {exc}") from None


def _skipped(name: str) -> bool:
    parts = name.split("/")
    return name.endswith(SKIPPED_SUFFIXES) or any(part in SKIPPED_DIRS for part in parts)


def _file_kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _size(n: int, *, up: bool = False) -> str:
    """Bytes in words; `up` rounds up so an over-quota size never prints as equal to the quota."""
    if n < 1024:
        return f"{n} bytes"
    unit, scale = ("KB", 1024) if n < 1024 * 1024 else ("MB", 1024 * 1024)
    value = (math.ceil if up else math.floor)(n / scale * 10) / 10
    return f"{value:g} {unit}"


# --- The content-addressed store --------------------------------------------------------------------------


def _bundle_store() -> Path:
    root = Path(settings.BUNDLE_ROOT)
    if not root.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        # Sandboxed children (other uids) must be able to reach their bundle through it.
        os.chmod(root, 0o755)
    return root


def _tenant_store(tenant_id: int) -> Path:
    return Path(settings.BUNDLE_ROOT) / str(tenant_id)


def _staging_root() -> Path:
    staging = _bundle_store() / STAGING
    staging.mkdir(mode=0o700, exist_ok=True)
    return staging


def _clean_stale_staging(staging: Path) -> None:
    """Remove staging directories a killed process left behind (older than a day)."""
    cutoff = time.time() - STALE_STAGING_S
    for entry in staging.iterdir():
        with contextlib.suppress(OSError):
            if entry.stat().st_mtime < cutoff:
                _remove_tree(entry)


@contextlib.contextmanager
def _tenant_lock(tenant_id: int) -> Iterator[None]:
    """One upload per tenant at a time on this host: version numbers and the store stay consistent."""
    store = _bundle_store() / str(tenant_id)
    store.mkdir(exist_ok=True)
    # Children may reach a version directory by its hash but may not list the tenant's versions.
    os.chmod(store, 0o711)
    with open(store / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _store(staged: StagedTree, tenant_id: int) -> tuple[Path, bool]:
    """Move the staged tree to its content-addressed place; (path, True if this call created it)."""
    target = _tenant_store(tenant_id) / staged.content_hash
    if target.is_dir():
        return target, False
    for directory, dirnames, filenames in os.walk(staged.path):
        for name in filenames:
            os.chmod(os.path.join(directory, name), 0o444)
        for name in dirnames:
            os.chmod(os.path.join(directory, name), 0o555)
    try:
        os.rename(staged.path, target)
    except OSError:
        if target.is_dir():  # another process stored the same content first
            return target, False
        raise
    os.chmod(target, 0o555)
    return target, True


def _remove_tree(path: Path) -> None:
    """Remove a tree, read-only directories included (the store makes everything read-only)."""
    if not os.path.lexists(path):
        return

    def make_writable(function: Callable[..., object], failed: str, _exc_info: object) -> None:
        parent = os.path.dirname(failed)
        with contextlib.suppress(OSError):
            os.chmod(parent, 0o700)
            os.chmod(failed, 0o700)
        function(failed)

    shutil.rmtree(path, onerror=make_writable)


# --- Rows: version, parse results, activation -------------------------------------------------------------


def _record_upload(
    *,
    tenant: Tenant,
    actor: Actor,
    bundle_name: str,
    staged: StagedTree,
    parsed: dagparsing.ParsedBundle,
    validate_only: bool,
    pause_new_dags: bool,
) -> UploadResult:
    bundle, _ = Bundle.objects.get_or_create(tenant=tenant, name=bundle_name)
    bundle = Bundle.objects.select_for_update().get(pk=bundle.pk)
    previous = bundle.active_version
    number = (bundle.versions.aggregate(top=Max("number"))["top"] or 0) + 1
    version = BundleVersion.objects.create(
        tenant=tenant,
        bundle=bundle,
        number=number,
        content_hash=staged.content_hash,
        size_bytes=staged.size_bytes,
        file_count=len(staged.files),
        validate_only=validate_only,
        uploaded_by_id=actor.user_id,
    )
    stored = dagparsing.record_parse(
        tenant=tenant,
        bundle=bundle,
        version=version,
        parsed=parsed,
        previous=previous,
        pause_new_dags=pause_new_dags,
    )
    version.dags = stored.entries
    version.import_error_count = len(stored.import_errors)
    version.state = BundleVersion.State.INACTIVE if validate_only else BundleVersion.State.READY
    version.save(update_fields=["dags", "import_error_count", "state"])
    audit.record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.BUNDLE_UPLOADED,
        obj=version,
        detail={
            "bundle": bundle.name,
            "number": number,
            "content_hash": version.content_hash,
            "files": version.file_count,
            "size_bytes": version.size_bytes,
            "dags": len(stored.entries),
            "import_errors": sorted(stored.import_errors),
            "validate_only": validate_only,
        },
    )
    if not validate_only:
        _activate(tenant=tenant, bundle=bundle, version=version)
        audit.record(
            tenant=tenant,
            actor=actor,
            action=AuditAction.BUNDLE_ACTIVATED,
            obj=version,
            detail=_version_detail(version, previous),
        )
    return UploadResult(
        version=version,
        activated=not validate_only,
        dags=sorted(stored.entries),
        import_errors=stored.import_errors,
    )


def _activate(*, tenant: Tenant, bundle: Bundle, version: BundleVersion) -> None:
    """Switch the (locked) bundle to `version` and bring the Dag rows in line with it."""
    entries: dict[str, dict] = version.dags
    elsewhere = (
        Dag.objects.for_tenant(tenant)
        .filter(is_active=True)
        .exclude(bundle=bundle)
        .exclude(dag_id__in=entries)
    )
    dagparsing.check_max_dags(tenant=tenant, count=len(entries), elsewhere=elsewhere.count())
    taken = (
        Dag.objects.for_tenant(tenant)
        .filter(dag_id__in=entries, is_active=True)
        .exclude(bundle=bundle)
        .select_related("bundle")
        .first()
    )
    if taken is not None:
        raise Conflict(f"DAG {taken.dag_id!r} is active in bundle {taken.bundle.name!r}")
    now = timezone.now()
    previous = bundle.active_version
    if previous is not None and previous.pk != version.pk:
        previous.state = BundleVersion.State.INACTIVE
        previous.save(update_fields=["state"])
    version.state = BundleVersion.State.ACTIVE
    version.activated_at = now
    version.save(update_fields=["state", "activated_at"])
    bundle.active_version = version
    bundle.save(update_fields=["active_version"])

    wanted = {entry["version"]: entry for entry in entries.values()}
    dag_of = dict(DagVersion.objects.for_tenant(tenant).filter(pk__in=wanted).values_list("pk", "dag_id"))
    current = {
        row["pk"]: row
        for row in Dag.objects.for_tenant(tenant)
        .filter(pk__in=dag_of.values())
        .values("pk", "active_version_id", "fileloc")
    }
    # Only DAGs whose version or file changes need their listing fields rewritten (usually a few).
    switched = {
        dag_version: dag
        for dag_version, dag in dag_of.items()
        if (current[dag]["active_version_id"], current[dag]["fileloc"])
        != (dag_version, wanted[dag_version]["file"])
    }
    # Only the listed keys of the serializations leave the database, not the whole task lists.
    keys = dagparsing.LISTED_KEYS
    for dag_version, *values in (
        DagVersion.objects.for_tenant(tenant)
        .filter(pk__in=switched)
        .values_list("pk", *(f"serialized__{key}" for key in keys))
    ):
        Dag.objects.filter(pk=switched[dag_version]).update(
            active_version_id=dag_version,
            fileloc=wanted[dag_version]["file"],
            **dagparsing.dag_fields(dict(zip(keys, values, strict=True))),
        )
    Dag.objects.for_tenant(tenant).filter(pk__in=dag_of.values()).update(
        bundle=bundle, is_active=True, last_parsed_at=now
    )
    Dag.objects.for_tenant(tenant).filter(bundle=bundle, is_active=True).exclude(
        pk__in=dag_of.values()
    ).update(is_active=False)
    # An unchanged serialization keeps its DagVersion, but it runs this version's files from now on (the
    # DAG versions of files that failed to import keep the files they were parsed from).
    repoint = [pk for pk in dag_of if not wanted[pk].get("carried")]
    DagVersion.objects.for_tenant(tenant).filter(pk__in=repoint).update(bundle_version=version)
    _apply_version_settings(tenant=tenant, switched=switched)


def _apply_version_settings(*, tenant: Tenant, switched: dict[int, int]) -> None:
    """What a newly active DAG version decides beyond its listing: the file's access_control grants and
    when the next scheduled run is due. Reads only the keys it needs from the serializations."""
    from scheduler.loop import SCHEDULE_KEYS, refresh_next_dagrun
    from tradewind.accounts.grants import apply_access_control
    from tradewind.accounts.models import DagAccessControl

    if not switched:
        return
    keys = (*SCHEDULE_KEYS, "access_control")
    rows = (
        DagVersion.objects.for_tenant(tenant)
        .filter(pk__in=switched)
        .values_list("pk", *(f"serialized__{key}" for key in keys))
    )
    dags = Dag.objects.for_tenant(tenant).in_bulk(switched.values())
    controlled = set(
        DagAccessControl.objects.for_tenant(tenant).filter(dag_id__in=dags).values_list("dag_id", flat=True)
    )
    for dag_version, *values in rows:
        serialized = dict(zip(keys, values, strict=True))
        dag = dags[switched[dag_version]]
        if serialized["access_control"] or dag.pk in controlled:
            apply_access_control(dag, serialized["access_control"])
        refresh_next_dagrun(dag, serialized)


def _unchanged(active: BundleVersion) -> UploadResult:
    errors = {error.filename: error.message for error in active.import_errors.all()}
    return UploadResult(version=active, activated=False, dags=sorted(active.dags), import_errors=errors)


def _version_detail(version: BundleVersion, previous: BundleVersion | None) -> dict:
    return {
        "bundle": version.bundle.name,
        "number": version.number,
        "previous_number": previous.number if previous is not None else None,
        "dags": sorted(version.dags),
    }


def _bundle_name(name: str) -> str:
    if not BUNDLE_NAME.match(name or ""):
        raise Invalid(
            f"bundle name {name!r} must be 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def _max_files() -> int:
    return settings.TRADEWIND_BUNDLE_MAX_FILES
