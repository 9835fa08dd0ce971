"""The child sees none of the platform's secrets, works in a private directory and runs as its tenant."""

from __future__ import annotations

import json
import os

import pytest

from workers.sandbox import parse_files

TENANT = 11
SECRETS = {
    "DATABASE_URL": "postgres://tradewind:hunter2@db/tradewind",
    "SECRET_KEY": "django-insecure-secret-key-value",
    "TRADEWIND_FERNET_KEYS": "fernet-key-value",
    "CELERY_BROKER_URL": "redis://:pw@redis:6379/0",
    "REDIS_URL": "redis://:pw@redis:6379/1",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
}

REPORT = """
import getpass, json, os
report = {
    "user": getpass.getuser(),
    "env": dict(os.environ),
    "cwd": os.getcwd(),
    "cwd_entries": sorted(os.listdir(".")),
    "uid": os.getuid(),
    "gid": os.getgid(),
    "groups": os.getgroups(),
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    "pgid_is_own": os.getpgid(0) == os.getpid(),
    "no_new_privs": [l for l in open("/proc/self/status") if l.startswith("NoNewPrivs")][0].split()[1],
}
for name, attempt in [
    ("parent_environ", lambda: open("/proc/%d/environ" % os.getppid()).read()),
    ("platform_secret", lambda: open(os.environ.get("SECRET_FILE", "/nonexistent")).read()),
    ("write_bundle", lambda: open(__file__ + ".modified", "w")),
]:
    try:
        attempt()
        report[name] = "allowed"
    except OSError as exc:
        report[name] = type(exc).__name__
open("left_behind.txt", "w").write("x")
raise RuntimeError("REPORT" + json.dumps(report))
"""


def report(bundle) -> dict:
    name = bundle.write("report.py", REPORT)
    error = parse_files(bundle.root, [name], tenant_id=TENANT)[name]["error"]
    return json.loads(error.split("REPORT", 1)[1].splitlines()[0])


def test_the_child_gets_a_scrubbed_environment(bundle, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    env = report(bundle)["env"]
    assert set(env) <= {
        "PATH",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "HOME",
        "TMPDIR",
        "PYTHONDONTWRITEBYTECODE",
        "MALLOC_ARENA_MAX",
        "USER",
        "LOGNAME",
        "AIRFLOW_HOME",
        "AIRFLOW__CORE__DAGS_FOLDER",
    }
    assert not set(SECRETS.values()) & set(env.values())


def test_each_job_gets_a_fresh_private_working_directory(bundle):
    first, second = report(bundle), report(bundle)
    assert first["cwd"] != second["cwd"]
    assert first["cwd_entries"] == second["cwd_entries"] == []
    assert first["env"]["HOME"] == first["env"]["TMPDIR"] == first["cwd"]
    assert not os.path.exists(first["cwd"])  # removed after the job
    assert oct(os.stat(os.path.dirname(first["cwd"])).st_mode & 0o777) == "0o711"


def test_the_child_has_only_its_own_descriptors_and_session(bundle):
    seen = report(bundle)
    assert len(seen["fds"]) == 5  # stdin/stdout/stderr, the RPC socket and the listing's own descriptor
    assert seen["pgid_is_own"] is True
    assert seen["no_new_privs"] == "1"


@pytest.mark.skipif(os.geteuid() != 0, reason="per-tenant uids need a root parent")
def test_as_root_the_child_runs_under_its_tenant_uid(bundle, tmp_path):
    secret = tmp_path / "platform.sqlite3"  # stands for the platform's data directory (mode 0700/0600)
    secret.write_text("secrets")
    secret.chmod(0o600)
    name = bundle.write(
        "report.py", REPORT.replace('os.environ.get("SECRET_FILE", "/nonexistent")', repr(str(secret)))
    )
    error = parse_files(bundle.root, [name], tenant_id=TENANT)[name]["error"]
    seen = json.loads(error.split("REPORT", 1)[1].splitlines()[0])
    assert (seen["uid"], seen["gid"], seen["groups"]) == (200000 + TENANT, 200000 + TENANT, [])
    assert seen["user"] == seen["env"]["USER"] == seen["env"]["LOGNAME"] == "airflow"  # no passwd entry
    assert seen["parent_environ"] == seen["platform_secret"] == seen["write_bundle"] == "PermissionError"


def test_airflow_home_is_the_jobs_own_directory_and_the_dags_folder_the_bundles(bundle):
    first, second = report(bundle), report(bundle)  # the report writes a file into its working directory
    assert first["env"]["AIRFLOW_HOME"] == first["env"]["HOME"] == first["cwd"]
    assert second["env"]["AIRFLOW_HOME"] == second["cwd"] != first["cwd"]  # no job sees another's
    assert first["env"]["AIRFLOW__CORE__DAGS_FOLDER"] == str(bundle.root.resolve())


@pytest.mark.skipif(os.geteuid() != 0, reason="per-tenant uids need a root parent")
def test_a_private_bundle_is_made_readable_to_its_tenant_only(bundle):
    root = bundle.root / "bundle"  # like the platform's bundle store: searchable parents, private bundle
    (root / "common").mkdir(parents=True)
    (root / "common" / "__init__.py").write_text("")
    (root / "common" / "names.py").write_text("PREFIX = 'from_helper'\n")
    (root / "dag.py").write_text("from common.names import PREFIX\nraise RuntimeError(PREFIX)\n")
    for path in (root, root / "common"):
        path.chmod(0o700)
    for path in (root / "dag.py", root / "common" / "names.py", root / "common" / "__init__.py"):
        path.chmod(0o600)
    error = parse_files(root, ["dag.py"], tenant_id=TENANT)["dag.py"]["error"]
    assert error.startswith("RuntimeError while importing dag.py: from_helper")
    assert (root / "dag.py").stat().st_gid == 200000 + TENANT
    assert (root / "dag.py").stat().st_mode & 0o777 == 0o640
    assert not (root / "common" / "__pycache__").exists()
