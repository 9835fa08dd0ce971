"""ObjectStoragePath: Airflow's path for object storage (`airflow.io.path`, `airflow.sdk`), local storage only.

Airflow builds it on fsspec and universal_pathlib, which Tradewind does not install. This one reads and
writes local files, given as plain paths or `file://` URLs, with the pathlib API DAG code uses, plus Airflow's
extensions (`copy`, `move`, `size`, `read_block`, `serialize`, ...). A path on any other scheme (`s3://`,
`gs://`, ...) can be built, joined, printed and passed between tasks, but reading or writing it raises a
ValueError naming the scheme.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pathlib
import shutil
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

# Protocols whose paths are this machine's files ("" is a plain path, "local" fsspec's alias of "file").
LOCAL_PROTOCOLS = frozenset({"", "file", "local"})

# open() options that tune fsspec's buffering or caching; a local file has nothing to tune.
_IGNORED_OPEN_OPTIONS = frozenset({"block_size", "cache_type", "cache_options", "autocommit"})


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)  # type: ignore[arg-type]
    uri = getattr(value, "uri", None)  # an Asset or Dataset names its file by its URI, as in Airflow 2.9+
    if isinstance(uri, str):
        return uri
    raise TypeError(f"ObjectStoragePath takes strings and paths, not {type(value).__name__}")


@functools.total_ordering
@dataclasses.dataclass(init=False, repr=False, eq=False)
class ObjectStoragePath:
    """A path in object storage, written as a URL (`file:///data/x.csv`, `s3://conn_id@bucket/key`) or a
    plain local path. `conn_id` comes from the keyword or the URL's user part. Immutable, like pathlib's.

    Only local paths (plain or `file://`) reach storage; see the module docstring."""

    # The dataclass fields are what crosses XCom (tasks return lists of paths): a task decodes the value
    # as ObjectStoragePath(uri=..., conn_id=...).
    uri: str
    conn_id: str | None

    __version__ = 1
    sep = "/"
    root_marker = "/"

    def __init__(
        self,
        *args: Any,
        scheme: str | None = None,
        protocol: str | None = None,
        conn_id: str | None = None,
        uri: str | None = None,
        **storage_options: Any,
    ) -> None:
        if uri is not None:
            if args:
                raise TypeError("ObjectStoragePath takes either positional path parts or uri=, not both")
            args = (uri,)
        first, rest = (args[0], args[1:]) if args else (".", ())
        override = protocol or scheme
        if isinstance(first, ObjectStoragePath):
            self._protocol, self._bucket, self._path = first._protocol, first._bucket, first._path
            self._dir_hint = first._dir_hint
            parsed_conn_id = first.conn_id
            storage_options = {**first.storage_options, **storage_options}
        else:
            text = _text_of(first)
            self._dir_hint = len(text) > 1 and text.endswith("/")
            parsed_conn_id = self._parse(text, override)
        for part in rest:
            text = _text_of(part)
            self._path = self._path / text
            self._dir_hint = len(text) > 1 and text.endswith("/")
        self.conn_id = conn_id if conn_id is not None else parsed_conn_id
        self.storage_options = storage_options
        self.uri = self._format()

    def _parse(self, text: str, override: str | None) -> str | None:
        """Set protocol, bucket and path from `text`; the conn_id its URL's user part names, if any."""
        split = urlsplit(text)
        given = split.scheme if "://" in text or split.scheme in LOCAL_PROTOCOLS else ""
        self._protocol = (override or given).lower()
        if not given and self._protocol not in LOCAL_PROTOCOLS:
            # A scheme passed apart from the path ("bucket/key", scheme="s3"): the first part is the bucket.
            bucket, _, key = text.lstrip("/").partition("/")
            self._bucket, self._path = bucket, pathlib.PurePosixPath("/" + key)
            return None
        location = text[len(given) + 1 :] if given else text
        if given and location.startswith("//"):
            location = location[2:]
        authority = location.split("/", 1)[0] if given else ""
        userinfo, has_user, host = authority.rpartition("@")
        if has_user:
            location = host + location[len(authority) :]
        if self._protocol in LOCAL_PROTOCOLS:
            # As fsspec's local filesystem: everything after "file://" is the path ("file://data/x" is relative).
            self._bucket, self._path = "", pathlib.PurePosixPath(location or ".")
        else:
            bucket, _, key = location.partition("/")
            self._bucket, self._path = bucket, pathlib.PurePosixPath("/" + key.split("?", 1)[0])
        return (userinfo or None) if has_user else None

    def _format(self) -> str:
        path = str(self._path)
        if self._protocol == "":
            text = path
        elif self._protocol in LOCAL_PROTOCOLS:
            text = f"{self._protocol}://{path}"
        else:
            text = f"{self._protocol}://{self._bucket}{path}"
        return text + "/" if self._dir_hint and not text.endswith("/") else text

    def _make(self, path: pathlib.PurePath, *, dir_hint: bool = False) -> ObjectStoragePath:
        """A path on the same store (protocol, bucket, connection) at `path`."""
        made = object.__new__(type(self))
        made._protocol, made._bucket, made._path = self._protocol, self._bucket, pathlib.PurePosixPath(path)
        made._dir_hint = dir_hint
        made.conn_id, made.storage_options = self.conn_id, dict(self.storage_options)
        made.uri = made._format()
        return made

    # --- names ----------------------------------------------------------------------------------------------

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"ObjectStoragePath({self.uri!r})"

    def __fspath__(self) -> str:
        # A remote path gives its URL, as universal_pathlib does; opening that fails naming the URL.
        return str(self._path) if self.is_local else self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectStoragePath) and self.samestore(other) and self.uri == other.uri

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, ObjectStoragePath):
            return NotImplemented
        return (self._protocol, self._bucket, self._path) < (other._protocol, other._bucket, other._path)

    def __truediv__(self, other: Any) -> ObjectStoragePath:
        text = _text_of(other)
        return self._make(self._path / text, dir_hint=len(text) > 1 and text.endswith("/"))

    def joinpath(self, *others: Any) -> ObjectStoragePath:
        """This path with `others` appended, as `/` does."""
        path = self
        for other in others:
            path = path / other
        return path

    def joinuri(self, uri: str) -> ObjectStoragePath:
        """`uri` resolved against this path as a URL (urljoin: a relative name replaces the last part)."""
        return ObjectStoragePath(urljoin(self.uri, uri), conn_id=self.conn_id, **self.storage_options)

    @property
    def is_local(self) -> bool:
        """Whether this path is a file of this machine (a plain path or a file:// URL)."""
        return self._protocol in LOCAL_PROTOCOLS

    @property
    def protocol(self) -> str:
        """The URL scheme ("file", "s3", ...); "" for a plain path."""
        return self._protocol

    @property
    def path(self) -> str:
        """The path without its protocol, as fsspec names it: "/data/x.csv", "bucket/key"."""
        if self.is_local:
            return str(self._path)
        return self._bucket if self._path.parts == ("/",) else f"{self._bucket}{self._path}"

    @property
    def bucket(self) -> str:
        """The URL's host part: the bucket or container ("" for a local path)."""
        return self._bucket

    @property
    def container(self) -> str:
        """Same as `bucket`."""
        return self._bucket

    @property
    def key(self) -> str:
        """The path inside the bucket without its leading slash (a trailing one kept: a folder)."""
        key = str(self._path).lstrip("/")
        return key + "/" if self._dir_hint and key and not key.endswith("/") else key

    @property
    def namespace(self) -> str:
        """The protocol and bucket: "s3://bucket", or just the protocol."""
        return f"{self._protocol}://{self._bucket}" if self._bucket else self._protocol

    @property
    def drive(self) -> str:
        """The bucket of a remote path; "" for a local one."""
        return self._bucket

    @property
    def root(self) -> str:
        """ "/" for an absolute path, else ""."""
        return self._path.root

    @property
    def anchor(self) -> str:
        """Drive and root together."""
        return self.drive + self.root

    @property
    def parts(self) -> tuple[str, ...]:
        """The path's components, the anchor first."""
        if self.is_local:
            return self._path.parts
        return (f"{self._bucket}/", *self._path.parts[1:])

    @property
    def name(self) -> str:
        """The last component."""
        return self._path.name

    @property
    def stem(self) -> str:
        """The last component without its suffix."""
        return self._path.stem

    @property
    def suffix(self) -> str:
        """The last component's extension (".csv"), or ""."""
        return self._path.suffix

    @property
    def suffixes(self) -> list[str]:
        """Every extension of the last component ([".tar", ".gz"])."""
        return self._path.suffixes

    @property
    def parent(self) -> ObjectStoragePath:
        """The folder holding this path."""
        return self._make(self._path.parent)

    @property
    def parents(self) -> tuple[ObjectStoragePath, ...]:
        """Every ancestor, nearest first."""
        return tuple(self._make(parent) for parent in self._path.parents)

    def with_name(self, name: str) -> ObjectStoragePath:
        """This path with its last component replaced."""
        return self._make(self._path.with_name(name))

    def with_stem(self, stem: str) -> ObjectStoragePath:
        """This path with its last component's stem replaced."""
        return self._make(self._path.with_stem(stem))

    def with_suffix(self, suffix: str) -> ObjectStoragePath:
        """This path with its suffix replaced (or removed with "")."""
        return self._make(self._path.with_suffix(suffix))

    def relative_to(self, other: Any) -> pathlib.PurePosixPath:
        """This path relative to `other` (a path on the same store, or its text)."""
        base = _as_path(other)
        if not self.samestore(base) or self._bucket != base._bucket:
            raise ValueError(f"{self.uri!r} is not in the subpath of {base.uri!r}")
        return self._path.relative_to(base._path)

    def is_relative_to(self, other: Any) -> bool:
        """Whether `relative_to(other)` would succeed."""
        try:
            self.relative_to(other)
        except ValueError:
            return False
        return True

    def match(self, pattern: str) -> bool:
        """Whether the path matches the glob-style `pattern` (from the right, as pathlib's)."""
        return self._path.match(pattern)

    def is_absolute(self) -> bool:
        """Whether the path has a root."""
        return self._path.is_absolute()

    def as_posix(self) -> str:
        """The path as text (its URL for a URL path)."""
        return self.uri

    def as_uri(self) -> str:
        """The path as an absolute URL."""
        if self.is_local:
            return pathlib.Path(self._path).absolute().as_uri()
        return self.uri

    def samestore(self, other: Any) -> bool:
        """Whether `other` is a path on the same storage: the same protocol and connection."""
        return (
            isinstance(other, ObjectStoragePath)
            and self._protocol == other._protocol
            and self.conn_id == other.conn_id
        )

    @classmethod
    def cwd(cls) -> ObjectStoragePath:
        """The current working directory."""
        return cls(os.getcwd())

    @classmethod
    def home(cls) -> ObjectStoragePath:
        """The user's home directory."""
        return cls(str(pathlib.Path.home()))

    # --- storage --------------------------------------------------------------------------------------------

    def _local(self) -> pathlib.Path:
        """This path as a local file path; ValueError naming the scheme for a remote path."""
        if not self.is_local:
            raise ValueError(
                f"Cannot access {self.uri}: Tradewind has no filesystem for the {self._protocol!r} scheme; "
                "ObjectStoragePath reads and writes only local paths and file:// URLs"
            )
        return pathlib.Path(self._path)

    def _target(self, target: Any) -> ObjectStoragePath:
        """A rename/move target: a relative name is taken from this path's folder for a URL path (as fsspec
        does) and from the working directory for a plain path (as pathlib does)."""
        if isinstance(target, ObjectStoragePath):
            return target
        text = _text_of(target)
        if "://" in text or pathlib.PurePosixPath(text).is_absolute() or self._protocol == "":
            return ObjectStoragePath(text, conn_id=self.conn_id)
        return self.parent / text

    @property
    def fs(self) -> Any:
        """fsspec's local filesystem, when fsspec is installed (Tradewind does not install it)."""
        self._local()
        try:
            import fsspec
        except ImportError as err:
            raise ModuleNotFoundError(
                "ObjectStoragePath.fs is an fsspec filesystem and fsspec is not installed; use the path's "
                "own methods (open, read_text, iterdir, copy, ...)"
            ) from err
        return fsspec.filesystem("file")

    def open(
        self,
        mode: str = "r",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
        **options: Any,
    ) -> IO[Any]:
        """Open the file, as the builtin `open` does. fsspec's buffering and caching options are accepted
        and have no effect; any other option is a TypeError."""
        unknown = set(options) - _IGNORED_OPEN_OPTIONS - {"compression"}
        if unknown or options.get("compression") not in (None, "infer"):
            name = sorted(unknown)[0] if unknown else "compression"
            raise TypeError(f"ObjectStoragePath.open() does not support the {name!r} option")
        return self._local().open(mode, buffering, encoding, errors, newline)

    def read_bytes(self) -> bytes:
        """The file's content."""
        return self._local().read_bytes()

    def read_text(self, encoding: str | None = None, errors: str | None = None) -> str:
        """The file's content decoded."""
        return self._local().read_text(encoding, errors)

    def write_bytes(self, data: bytes) -> int:
        """Replace the file's content; the number of bytes written."""
        return self._local().write_bytes(data)

    def write_text(
        self, data: str, encoding: str | None = None, errors: str | None = None, newline: str | None = None
    ) -> int:
        """Replace the file's content with `data` encoded; the number of characters written."""
        return self._local().write_text(data, encoding, errors, newline)

    def read_block(self, offset: int, length: int | None, delimiter: bytes | None = None) -> bytes:
        """`length` bytes from `offset` (to the end when None), as fsspec's read_block: with a `delimiter`,
        the block starts just after the first delimiter at or after `offset` (or at 0) and ends just after
        the first delimiter at or after `offset + length` (or at the end)."""
        with self._local().open("rb") as fh:
            if not delimiter:
                fh.seek(offset)
                return fh.read() if length is None else fh.read(length)
            start = _after_delimiter(fh, offset, delimiter)
            if length is None:
                fh.seek(start)
                return fh.read()
            end = _after_delimiter(fh, offset + length, delimiter)
            fh.seek(start)
            return fh.read(max(end - start, 0))

    def exists(self) -> bool:
        """Whether anything is at this path."""
        return self._local().exists()

    def is_dir(self) -> bool:
        """Whether this path is a folder."""
        return self._local().is_dir()

    def is_file(self) -> bool:
        """Whether this path is a file."""
        return self._local().is_file()

    def is_symlink(self) -> bool:
        """Whether this path is a symbolic link."""
        return self._local().is_symlink()

    def stat(self) -> os.stat_result:
        """The file's status (`st_size`, `st_mtime`, ...)."""
        return self._local().stat()

    def lstat(self) -> os.stat_result:
        """As `stat`, not following a symbolic link."""
        return self._local().lstat()

    def size(self) -> int:
        """The file's size in bytes."""
        return self.stat().st_size

    def samefile(self, other: Any) -> bool:
        """Whether `other` is the same file."""
        other_path = _as_path(other)
        return self._local().samefile(other_path._local())

    def ukey(self) -> str:
        """A hash of the file's properties that changes when the file does."""
        info = self.stat()
        identity = (os.fspath(self._local().absolute()), info.st_size, info.st_mtime_ns, info.st_ino)
        return hashlib.sha256(repr(identity).encode()).hexdigest()

    def checksum(self) -> int:
        """An integer that changes when the file does (from its properties, as fsspec's local checksum)."""
        return int(self.ukey()[:32], 16)

    def sign(self, expiration: int = 100, **kwargs: Any) -> str:
        """Signed URLs are a feature of remote stores; a local file has none."""
        raise NotImplementedError("Sign is not implemented for local files")

    def mkdir(self, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        """Create the folder."""
        self._local().mkdir(mode, parents, exist_ok)

    def touch(self, mode: int = 0o666, exist_ok: bool = True) -> None:
        """Create the file, or update its modification time."""
        self._local().touch(mode, exist_ok)

    def unlink(self, missing_ok: bool = False) -> None:
        """Remove the file."""
        self._local().unlink(missing_ok)

    def rmdir(self, recursive: bool | None = None) -> None:
        """Remove the folder: with its content when `recursive` (by default for a file:// URL, as fsspec),
        only an empty one otherwise (by default for a plain path, as pathlib)."""
        local = self._local()
        if recursive is None:
            recursive = self._protocol != ""
        if recursive:
            shutil.rmtree(local)
        else:
            local.rmdir()

    def iterdir(self) -> Iterator[ObjectStoragePath]:
        """The folder's entries."""
        for child in self._local().iterdir():
            yield self._make(self._path / child.name)

    def glob(self, pattern: str) -> Iterator[ObjectStoragePath]:
        """The paths under this folder matching `pattern` ("*.csv", "**/*.json")."""
        for found in self._local().glob(pattern):
            yield self._make(found)

    def rglob(self, pattern: str) -> Iterator[ObjectStoragePath]:
        """As `glob`, in every subfolder too."""
        for found in self._local().rglob(pattern):
            yield self._make(found)

    def resolve(self, strict: bool = False) -> ObjectStoragePath:
        """The absolute path with symbolic links and ".." resolved."""
        return self._make(self._local().resolve(strict))

    def absolute(self) -> ObjectStoragePath:
        """The path made absolute against the working directory."""
        return self._make(self._local().absolute())

    def expanduser(self) -> ObjectStoragePath:
        """The path with "~" expanded."""
        return self._make(self._local().expanduser())

    def rename(self, target: Any) -> ObjectStoragePath:
        """Rename to `target` (replacing a file there); the new path. See `_target` for relative names."""
        destination = self._target(target)
        self._local().rename(destination._local())
        return destination

    def replace(self, target: Any) -> ObjectStoragePath:
        """Rename to `target`, replacing what is there; the new path."""
        destination = self._target(target)
        self._local().replace(destination._local())
        return destination

    def _destination(self, dst: Any) -> pathlib.Path:
        """Where a copy or move of this path to `dst` lands: inside `dst` when it is a folder (it exists as
        one, or its name ends with "/"), else at `dst`; the folder above is created."""
        target = _as_path(dst)
        local = target._local()
        if target._dir_hint or local.is_dir():
            local = local / self.name
        local.parent.mkdir(parents=True, exist_ok=True)
        return local

    def copy(self, dst: Any, recursive: bool = False, **kwargs: Any) -> None:
        """Copy the file (or with `recursive` the folder and its content) to `dst`."""
        source = self._local()
        if source.is_dir():
            if not recursive:
                raise IsADirectoryError(f"{self.uri} is a folder: copy it with recursive=True")
            shutil.copytree(source, self._destination(dst), dirs_exist_ok=True)
        else:
            shutil.copyfile(source, self._destination(dst))

    def copy_into(self, target_dir: Any, recursive: bool = False, **kwargs: Any) -> None:
        """Copy into the existing folder `target_dir`."""
        self.copy(_existing_folder(target_dir) / self.name, recursive=recursive, **kwargs)

    def move(self, path: Any, recursive: bool = False, **kwargs: Any) -> None:
        """Move the file (or folder) to `path`."""
        source = self._local()
        if source.is_dir() and not recursive:
            raise IsADirectoryError(f"{self.uri} is a folder: move it with recursive=True")
        shutil.move(source, self._destination(path))

    def move_into(self, target_dir: Any, recursive: bool = False, **kwargs: Any) -> None:
        """Move into the existing folder `target_dir`."""
        self.move(_existing_folder(target_dir) / self.name, recursive=recursive, **kwargs)

    # --- Airflow's serialization ----------------------------------------------------------------------------

    def serialize(self) -> dict[str, Any]:
        """{"path", "conn_id", "kwargs"}: what `deserialize` takes back."""
        return {"path": self.uri, "conn_id": self.conn_id, "kwargs": dict(self.storage_options)}

    @classmethod
    def deserialize(cls, data: dict[str, Any], version: int) -> ObjectStoragePath:
        """The path `serialize` described."""
        if version > cls.__version__:
            raise ValueError(f"Cannot deserialize version {version} with version {cls.__version__}.")
        return cls(data["path"], conn_id=data.get("conn_id"), **data.get("kwargs", {}))


def _as_path(value: Any) -> ObjectStoragePath:
    return value if isinstance(value, ObjectStoragePath) else ObjectStoragePath(value)


def _existing_folder(value: Any) -> ObjectStoragePath:
    """`value` as a path, which must be an existing folder (copy_into / move_into)."""
    folder = _as_path(value)
    if not folder.is_dir():
        raise NotADirectoryError(f"Destination {folder} is not a directory.")
    return folder


def _after_delimiter(fh: IO[bytes], position: int, delimiter: bytes) -> int:
    """The offset just past the first `delimiter` starting at or after `position` (0 stays 0: the file's
    start is a boundary), or the file's end."""
    if position <= 0:
        return 0
    fh.seek(position)
    carried = b""
    base = position
    while chunk := fh.read(1 << 16):
        window = carried + chunk
        found = window.find(delimiter)
        if found >= 0:
            return base + found + len(delimiter)
        keep = len(delimiter) - 1
        carried = window[-keep:] if keep else b""
        base += len(window) - len(carried)
    return fh.seek(0, os.SEEK_END)
