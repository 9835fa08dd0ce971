"""Parsing a bundle version's DAG files in the sandbox, and storing what they define.

Which files are DAG files follows Airflow: `.py` files not excluded by a `.airflowignore` (regexp or glob
syntax, setting TRADEWIND_DAG_IGNORE_FILE_SYNTAX) whose content mentions "dag" or "asset", and "airflow"
(safe mode, case-insensitive; "tradewind" for our native SDK). Every other file is a support file.

A file is parsed again only when its content, the bundle's support files or the SDK changed: the ParsedFile
cache is keyed on all three. Files whose parse asked the platform for something (a top-level Variable.get)
and results the sandbox could not finish (timeouts, killed processes) are not cached.

Storing: one ParseImportError row per failing file, a Dag row per new dag_id, and a DagVersion only when the
DAG's serialization (tradewind.sdk.serialization.dag_hash) is new for that DAG.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import tempfile
import textwrap
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Max

from scheduler.assets import register_assets
from scheduler.models import Bundle, BundleVersion, Dag, DagVersion, ParsedFile, ParseImportError
from tenants.models import Tenant
from tradewind.errors import Invalid
from tradewind.sdk.serialization import dag_hash
from workers import sandbox

if TYPE_CHECKING:
    from scheduler.bundles import UploadResult

log = logging.getLogger(__name__)

IGNORE_FILE = ".airflowignore"
PLATFORM_ROOT = Path(__file__).resolve().parents[1]
# Code whose change changes what parsing a file yields: the SDK, the compatibility layer, the parse job.
SDK_SOURCES = ("tradewind/sdk", "workers/compat", "workers/sandbox")
# Results that say more about the machine than about the file: parse again next time.
NOT_CACHED_ERRORS = ("the sandbox failed", "timed out after", "killed by", "terminated by the platform")


@dataclass
class FileParse:
    """The parse of one DAG file: its import error, or the (dag_id, dag_hash) of each DAG it defines and,
    once loaded, their serializations (a result from the cache loads them only if they are needed)."""

    error: str | None
    summary: list[tuple[str, str]]
    dags: list[dict[str, Any]] | None


@dataclass
class ParsedBundle:
    """The parse of one bundle tree, per DAG file."""

    tenant_id: int
    results: dict[str, FileParse]
    cache_keys: dict[str, str]  # DAG file -> its parse-cache key
    new_cache: dict[str, dict[str, Any]]  # cache key -> result, to store with the version
    parsed: list[str]  # files parsed in the sandbox this time (the others came from the cache)
    duration_s: float

    def serialization(self, file: str, dag_id: str) -> dict[str, Any]:
        """The serialization of `dag_id` as `file` defines it (the last one when it defines it twice)."""
        result = self.results[file]
        if result.dags is None:
            row = ParsedFile.objects.for_tenant(self.tenant_id).get(cache_key=self.cache_keys[file])
            result.dags = row.result["dags"]
        return next(data for data in reversed(result.dags) if data["dag_id"] == dag_id)


@dataclass
class StoredParse:
    """What record_parse stored: the version's DAGs (BundleVersion.dags) and its import errors."""

    entries: dict[str, dict[str, Any]]
    import_errors: dict[str, str]


# --- Which files are DAG files ----------------------------------------------------------------------------


def is_dag_file(content: bytes) -> bool:
    """Airflow's safe-mode test (since 3.0 an "@asset" file needs no "dag"), with our own SDK's name as an
    alternative to "airflow"."""
    lowered = content.lower()
    return (b"dag" in lowered or b"asset" in lowered) and (b"airflow" in lowered or b"tradewind" in lowered)


@dataclass(frozen=True)
class _Rule:
    base: str  # the directory of the .airflowignore file ("" for the bundle root)
    regex: re.Pattern[str]
    negated: bool = False
    dirs_only: bool = False
    anchored_search: bool = False  # regexp syntax: re.search, anywhere in the relative path

    def matches(self, path: str, *, is_dir: bool) -> bool:
        if self.dirs_only and not is_dir:
            return False
        relative = path[len(self.base) + 1 :] if self.base else path
        if self.anchored_search:
            return self.regex.search(relative) is not None
        return self.regex.match(relative) is not None


def parse_ignore_file(text: str, *, base: str, syntax: str) -> list[_Rule]:
    """The rules of one .airflowignore. `syntax` "regexp" (Airflow 2's default: each line a regular
    expression searched in the path relative to the file's directory; a line that is not a valid regular
    expression is read as a glob) or "glob" (Airflow 3's default: .gitignore-style, `!` re-includes)."""
    rules = []
    for line in text.splitlines():
        line = re.sub(r"\s*#.*", "", line).strip()
        if not line:
            continue
        if syntax == "regexp":
            try:
                rules.append(_Rule(base=base, regex=re.compile(line), anchored_search=True))
                continue
            except re.error:
                pass
        rule = _glob_rule(line, base)
        if rule is not None:
            rules.append(rule)
    return rules


def _glob_rule(pattern: str, base: str) -> _Rule | None:
    negated = pattern.startswith("!")
    pattern = pattern[1:] if negated else pattern
    dirs_only = pattern.endswith("/")
    pattern = pattern.rstrip("/")
    anchored = "/" in pattern
    pattern = pattern.lstrip("/")
    if not pattern:
        return None
    segments = pattern.split("/")
    regex = ""
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
        else:
            regex += _glob_segment(segment) + ("" if last else "/")
    prefix = "" if anchored else "(?:.*/)?"
    try:
        compiled = re.compile(f"{prefix}{regex}\\Z")
    except re.error:
        log.warning("skipping an invalid .airflowignore pattern", extra={"pattern": pattern})
        return None
    return _Rule(base=base, regex=compiled, negated=negated, dirs_only=dirs_only)


def _glob_segment(segment: str) -> str:
    out = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and i + 1 < len(segment):
            i += 1
            out.append(re.escape(segment[i]))
        elif char == "[" and (end := segment.find("]", i + 2)) != -1:
            body = segment[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def find_dag_files(root: Path, files: Iterable[str]) -> list[str]:
    """The DAG files among `files` (paths relative to `root`), sorted: `.py` files that no .airflowignore
    excludes (an excluded directory excludes everything in it) and that pass is_dag_file."""
    syntax = settings.TRADEWIND_DAG_IGNORE_FILE_SYNTAX.lower()
    names = sorted(files)
    ignore_files = {_parent(name): name for name in names if PurePosixPath(name).name == IGNORE_FILE}
    rules_in: dict[str, list[_Rule]] = {}

    def rules_for(directory: str) -> list[_Rule]:
        """Every rule that applies inside `directory`: its ancestors' first, then its own."""
        if directory not in rules_in:
            inherited = [] if directory == "" else rules_for(_parent(directory))
            own = []
            if directory in ignore_files:
                text = (root / ignore_files[directory]).read_text("utf-8", errors="replace")
                own = parse_ignore_file(text, base=directory, syntax=syntax)
            rules_in[directory] = inherited + own
        return rules_in[directory]

    def ignored(path: str, *, is_dir: bool) -> bool:
        verdict = False
        for rule in rules_for(_parent(path)):
            if rule.matches(path, is_dir=is_dir):
                verdict = not rule.negated
        return verdict

    found = []
    for name in names:
        if not name.endswith(".py"):
            continue
        parts = name.split("/")
        ancestors = ["/".join(parts[:depth]) for depth in range(1, len(parts))]
        if any(ignored(directory, is_dir=True) for directory in ancestors) or ignored(name, is_dir=False):
            continue
        if is_dag_file((root / name).read_bytes()):
            found.append(name)
    return found


def _parent(path: str) -> str:
    parent = str(PurePosixPath(path).parent)
    return "" if parent == "." else parent


# --- Parsing, with the content-hash cache -----------------------------------------------------------------


@lru_cache(maxsize=1)
def sdk_fingerprint() -> str:
    """A hash of the code that turns a DAG file into serializations (changes when the platform is upgraded)."""
    digest = hashlib.sha256()
    for top in SDK_SOURCES:
        for path in sorted((PLATFORM_ROOT / top).rglob("*.py")):
            digest.update(str(path.relative_to(PLATFORM_ROOT)).encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def cache_key(file: str, content_hash: str, support_hash: str) -> str:
    """The parse-cache key of one DAG file: its path and content, the bundle's support files, the SDK."""
    material = f"{file}\0{content_hash}\0{support_hash}\0{sdk_fingerprint()}"
    return hashlib.sha256(material.encode()).hexdigest()


def parse_bundle(
    *, tenant: Tenant, root: Path, files: dict[str, str], secrets_tenant_id: int | None = None
) -> ParsedBundle:
    """Parse the DAG files of the tree at `root` (`files`: path -> sha256 of its content), taking unchanged
    files from the tenant's parse cache. Nothing is written: record_parse stores the new cache entries.
    `secrets_tenant_id` (dags test --tenant): the tenant whose variables and connections the files' top-level
    code reads, instead of `tenant`'s (a file that reads any is never cached, whichever tenant answered)."""
    started = time.perf_counter()
    dag_files = find_dag_files(root, files)
    dag_file_set = set(dag_files)
    support = hashlib.sha256(
        "".join(
            f"{name}\0{digest}\n" for name, digest in sorted(files.items()) if name not in dag_file_set
        ).encode()
    ).hexdigest()
    keys = {name: cache_key(name, files[name], support) for name in dag_files}
    # Only the small parts of cached results: the serializations are fetched when a DAG version is new.
    cached = {
        key: FileParse(error=error, summary=[(dag_id, digest) for dag_id, digest in summary], dags=None)
        for key, error, summary in ParsedFile.objects.for_tenant(tenant)
        .filter(cache_key__in=list(keys.values()))
        .values_list("cache_key", "result__error", "result__summary")
        if summary is not None
    }
    results = {name: cached[key] for name, key in keys.items() if key in cached}
    todo = [name for name in dag_files if keys[name] not in cached]
    new_cache = {}
    for name, (result, asked_platform) in _parse_in_sandbox(tenant.pk, root, todo, secrets_tenant_id).items():
        dags = [{**data, "fileloc": name} for data in result["dags"]]  # where Airflow found it
        summary = [(data["dag_id"], dag_hash(data)) for data in dags]
        results[name] = FileParse(error=result["error"], summary=summary, dags=dags)
        if not asked_platform and _cacheable(result):
            new_cache[keys[name]] = {"dags": dags, "error": result["error"], "summary": summary}
    return ParsedBundle(
        tenant_id=tenant.pk,
        results=dict(sorted(results.items())),
        cache_keys=keys,
        new_cache=new_cache,
        parsed=todo,
        duration_s=time.perf_counter() - started,
    )


class _ParseHandler:
    """Answers a parsing child's requests (workers.rpc.ParseRpcHandler) and remembers that it was asked:
    such a file's result depends on more than its content, so it is not cached."""

    def __init__(self, tenant_id: int, secrets_tenant_id: int | None) -> None:
        self.tenant_id = tenant_id
        self.secrets_tenant_id = secrets_tenant_id
        self.asked = False
        self._inner: Any = None

    def __call__(self, op: str, kwargs: dict[str, Any]) -> Any:
        self.asked = True
        if self._inner is None:
            from workers.rpc import ParseRpcHandler

            self._inner = ParseRpcHandler(tenant_id=self.tenant_id, secrets_tenant_id=self.secrets_tenant_id)
        return self._inner(op, kwargs)


def _parse_in_sandbox(
    tenant_id: int, root: Path, files: list[str], secrets_tenant_id: int | None = None
) -> dict[str, tuple[dict[str, Any], bool]]:
    """file -> (result, whether the file asked the platform something), files in parallel."""
    if not files:
        return {}
    timeout_s = settings.TRADEWIND_PARSE_TIMEOUT
    memory_mb = settings.TRADEWIND_PARSE_MEMORY_MB
    limits = sandbox.Limits(memory_mb=int(memory_mb)) if memory_mb else sandbox.Limits()

    def parse_one(file: str) -> tuple[dict[str, Any], bool]:
        handler = _ParseHandler(tenant_id, secrets_tenant_id)
        try:
            result = sandbox.parse_files(
                root, [file], tenant_id=tenant_id, handler=handler, timeout_s=timeout_s, limits=limits
            )[file]
        finally:
            if handler.asked:  # the handler used this thread's own database connection
                connections.close_all()
        return {"dags": result["dags"], "error": result["error"]}, handler.asked

    # Twice the CPUs: a parse is mostly waiting for its child, and the children do the work.
    workers = min(len(files), 2 * len(os.sched_getaffinity(0)))
    if workers == 1:
        return {file: parse_one(file) for file in files}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dag-parse") as pool:
        return dict(zip(files, pool.map(parse_one, files), strict=True))


def _cacheable(result: dict[str, Any]) -> bool:
    error = result.get("error")
    return error is None or not error.startswith(NOT_CACHED_ERRORS)


# --- Storing: import errors, Dag rows, DAG versions --------------------------------------------------------


def record_parse(
    *,
    tenant: Tenant,
    bundle: Bundle,
    version: BundleVersion,
    parsed: ParsedBundle,
    previous: BundleVersion | None,
    pause_new_dags: bool,
) -> StoredParse:
    """Store the parse of `version` (inside the upload's transaction): import errors, new Dag rows (not yet
    active), DagVersions for serializations new to their DAG, the assets those declare, and the parse-cache
    entries. A dag_id defined by two files is an import error of the second one (the file that already
    defines the DAG keeps it); a dag_id active in another bundle of the tenant is an import error too. A DAG
    whose file fails to import keeps the DAG version it had in `previous`, as Airflow keeps a broken file's
    DAGs. Invalid (everything rolls back) when the DAGs would exceed the tenant's max_dags."""
    errors: dict[str, list[str]] = {}
    for file, result in parsed.results.items():
        if result.error:
            errors.setdefault(file, []).append(result.error)
    claimed = _claim_dag_ids(tenant=tenant, bundle=bundle, parsed=parsed, errors=errors)
    entries: dict[str, dict[str, Any]] = {
        dag_id: {"version": None, "file": file, "carried": False} for dag_id, (file, _hash) in claimed.items()
    }
    for dag_id, entry in _carried(previous, parsed).items():
        entries.setdefault(dag_id, entry)
    elsewhere = Dag.objects.for_tenant(tenant).filter(is_active=True).exclude(bundle=bundle)
    check_max_dags(tenant=tenant, count=len(entries), elsewhere=elsewhere.exclude(dag_id__in=entries).count())

    dags = {
        dag.dag_id: dag
        for dag in Dag.objects.for_tenant(tenant).filter(dag_id__in=list(claimed)).only("pk", "dag_id")
    }
    new_dags = []
    for dag_id, (file, _hash) in claimed.items():
        if dag_id not in dags:
            data = parsed.serialization(file, dag_id)
            new_dags.append(
                Dag(
                    tenant=tenant,
                    dag_id=dag_id,
                    bundle=bundle,
                    fileloc=file,
                    is_active=False,
                    is_paused=pause_new_dags or bool(data.get("is_paused_upon_creation")),
                    **dag_fields(data),
                )
            )
    for dag in Dag.objects.bulk_create(new_dags):
        dags[dag.dag_id] = dag
    by_pk = {dag.pk: dag_id for dag_id, dag in dags.items()}
    known = {
        (by_pk[dag_pk], digest): pk
        for pk, dag_pk, digest in DagVersion.objects.for_tenant(tenant)
        .filter(dag__in=list(dags.values()), hash__in=[digest for _file, digest in claimed.values()])
        .order_by("number")
        .values_list("pk", "dag_id", "hash")
    }
    top = dict(
        DagVersion.objects.for_tenant(tenant)
        .filter(dag__in=list(dags.values()))
        .values("dag_id")
        .annotate(top=Max("number"))
        .values_list("dag_id", "top")
    )
    new_versions = []
    for dag_id, (file, digest) in claimed.items():
        existing = known.get((dag_id, digest))
        if existing is not None:
            entries[dag_id]["version"] = existing
            continue
        dag = dags[dag_id]
        new_versions.append(
            DagVersion(
                tenant=tenant,
                dag=dag,
                number=top.get(dag.pk, 0) + 1,
                hash=digest,
                serialized=parsed.serialization(file, dag_id),
                bundle_version=version,
            )
        )
    for dag_version in DagVersion.objects.bulk_create(new_versions):
        entries[dag_version.dag.dag_id]["version"] = dag_version.pk
    register_assets(tenant.pk, (dag_version.serialized for dag_version in new_versions))

    import_errors = {file: "\n".join(messages) for file, messages in sorted(errors.items())}
    ParseImportError.objects.bulk_create(
        ParseImportError(tenant=tenant, bundle_version=version, filename=file, message=message)
        for file, message in import_errors.items()
    )
    ParsedFile.objects.bulk_create(
        [ParsedFile(tenant=tenant, cache_key=key, result=result) for key, result in parsed.new_cache.items()],
        ignore_conflicts=True,
    )
    return StoredParse(entries=dict(sorted(entries.items())), import_errors=import_errors)


def _claim_dag_ids(
    *, tenant: Tenant, bundle: Bundle, parsed: ParsedBundle, errors: dict[str, list[str]]
) -> dict[str, tuple[str, str]]:
    """dag_id -> (file, dag_hash) for each DAG the version keeps; clashes become import errors."""
    candidates: dict[str, list[tuple[str, str]]] = {}
    for file, result in parsed.results.items():
        by_id = dict(result.summary)  # as in Airflow, the last DAG of a file with a given id wins
        for dag_id, digest in by_id.items():
            candidates.setdefault(dag_id, []).append((file, digest))
    existing = {
        dag.dag_id: dag
        for dag in Dag.objects.for_tenant(tenant)
        .filter(dag_id__in=list(candidates))
        .select_related("bundle")
        .only("pk", "dag_id", "fileloc", "is_active", "bundle__name")
    }
    claimed = {}
    for dag_id, found in candidates.items():
        dag = existing.get(dag_id)
        if dag is not None and dag.is_active and dag.bundle_id != bundle.pk:
            for file, _digest in found:
                errors.setdefault(file, []).append(
                    f"DAG {dag_id!r} is already defined in bundle {dag.bundle.name!r} ({dag.fileloc})"
                )
            continue
        owner = next((item for item in found if dag is not None and item[0] == dag.fileloc), found[0])
        claimed[dag_id] = owner
        for file, _digest in found:
            if file != owner[0]:
                errors.setdefault(file, []).append(f"DAG {dag_id!r} is already defined in {owner[0]}")
    return claimed


def _carried(previous: BundleVersion | None, parsed: ParsedBundle) -> dict[str, dict[str, Any]]:
    """The previous version's DAGs whose file is still there but now fails to import."""
    if previous is None:
        return {}
    broken = {file for file, result in parsed.results.items() if result.error}
    return {
        dag_id: {**entry, "carried": True}
        for dag_id, entry in (previous.dags or {}).items()
        if entry.get("file") in broken
    }


def check_max_dags(*, tenant: Tenant, count: int, elsewhere: int) -> None:
    """Invalid when `count` DAGs of this bundle plus `elsewhere` active DAGs of the tenant's other bundles
    exceed the tenant's max_dags."""
    if count + elsewhere <= tenant.max_dags:
        return
    if elsewhere:
        raise Invalid(
            f"the bundle defines {count} DAGs; with the {elsewhere} DAGs of the tenant's other bundles that "
            f"is above the tenant's limit of {tenant.max_dags} DAGs"
        )
    raise Invalid(f"the bundle defines {count} DAGs, above the tenant's limit of {tenant.max_dags} DAGs")


# The keys of a serialization that dag_fields reads.
LISTED_KEYS = ("description", "owners", "owner", "tags", "schedule", "max_active_runs", "max_active_tasks")


def dag_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The Dag row's listing fields (description, owners, tags, schedule, max_active_runs/tasks) taken from
    the serialization of its active version."""
    owners = data.get("owners") or data.get("owner") or ""
    if not isinstance(owners, str):
        owners = ", ".join(str(owner) for owner in owners)
    return {
        "description": data.get("description") or "",
        "owners": owners[: Dag._meta.get_field("owners").max_length],
        "tags": sorted(str(tag) for tag in data.get("tags") or []),
        "schedule": data.get("schedule"),
        "max_active_runs": data.get("max_active_runs") or Dag._meta.get_field("max_active_runs").default,
        "max_active_tasks": data.get("max_active_tasks") or Dag._meta.get_field("max_active_tasks").default,
    }


# --- Benchmark ----------------------------------------------------------------------------------------------

BENCH_FILE = """\
import pendulum
from airflow import DAG
from airflow.operators.python import PythonOperator


def work(n):
    return n


with DAG(
    dag_id="bench_{index:03d}",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bench", "revision-{revision}"],
):
    previous = None
    for i in range({tasks}):
        task = PythonOperator(task_id=f"t{{i:02d}}", python_callable=work, op_args=[i])
        if previous is not None:
            previous >> task
        previous = task
"""


def bench_bundle_parse(*, files: int = 200, tasks: int = 20) -> dict[str, float | int]:
    """Measure a repository of `files` DAG files × `tasks` tasks: uploaded cold into a fresh tenant, then
    uploaded again with one file changed. Seconds for the parse (discovery + cache + sandbox) and for the
    whole upload (checks, store, parse, rows, activation). The throw-away tenant is deleted afterwards."""
    from scheduler import bundles
    from tenants import services
    from tradewind.accounts.actors import Actor

    sandbox.prestart()
    tenant = services.create_tenant(slug=f"bench-parse-{secrets.token_hex(4)}", max_dags=max(500, files))
    actor = Actor.system("bench")
    work = Path(tempfile.mkdtemp(prefix="tradewind-bench-parse-"))
    try:
        for index in range(files):
            (work / f"bench_{index:03d}.py").write_text(
                BENCH_FILE.format(index=index, tasks=tasks, revision=0)
            )
        cold = bundles.upload_bundle(tenant=tenant, actor=actor, source=work)
        (work / "bench_000.py").write_text(BENCH_FILE.format(index=0, tasks=tasks, revision=1))
        warm = bundles.upload_bundle(tenant=tenant, actor=actor, source=work)
        _check_bench(cold, files)
        _check_bench(warm, files)
        return {
            "files": files,
            "tasks_per_dag": tasks,
            "cold_parse_s": round(cold.timings["parse_s"], 3),
            "cold_upload_s": round(cold.timings["total_s"], 3),
            "one_changed_parse_s": round(warm.timings["parse_s"], 3),
            "one_changed_upload_s": round(warm.timings["total_s"], 3),
            "one_changed_files_parsed": int(warm.timings["parsed_files"]),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
        tenant_id = tenant.pk
        with transaction.atomic():
            DagVersion.objects.for_tenant(tenant).delete()  # they PROTECT the bundle versions
            tenant.delete()
        bundles.delete_bundle_files(tenant_id)


def _check_bench(result: UploadResult, files: int) -> None:
    if result.import_errors or len(result.dags) != files:
        problems = textwrap.shorten(repr(result.import_errors), 500)
        raise RuntimeError(f"the bench repository did not parse: {len(result.dags)} DAGs, errors {problems}")
