"""`manage.py dags test` and `manage.py dags upload`: options, output formats, exit status, clean-up."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings

from scheduler.models import Dag
from tenants.models import Tenant
from tests.dagtest.conftest import DAGS
from tradewind.accounts.actors import Actor
from tradewind.audit.models import AuditEntry
from tradewind.secrets import services as secrets

pytestmark = pytest.mark.django_db(transaction=True)
MANAGE = Path(__file__).resolve().parents[2] / "manage.py"


def no_ephemeral_tenant_left() -> bool:
    return not Tenant.objects.filter(slug__startswith="dags-test-").exists()


def test_json_from_a_real_subprocess_is_exactly_one_document_on_a_fresh_sqlite_database():
    data_dir = Path(tempfile.mkdtemp(prefix="tw-dagtest-subprocess-"))
    os.chmod(data_dir, 0o755)
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env["TRADEWIND_DATA_DIR"] = str(data_dir)  # no DATABASE_URL: embedded SQLite, migrated by the command
    try:
        done = subprocess.run(
            [sys.executable, str(MANAGE), "dags", "test", str(DAGS / "simple"), "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            cwd=MANAGE.parent,
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # the whole of stdout is one JSON document
    assert document == {
        "dags": [
            {
                "dag_id": "hello",
                "run_id": document["dags"][0]["run_id"],
                "state": "success",
                "tasks": {"greet": "success", "shout": "success"},
            }
        ],
        "import_errors": {},
    }
    assert document["dags"][0]["run_id"].startswith("manual__")


def test_ctrl_c_stops_running_tasks_and_still_removes_the_ephemeral_tenant():
    data_dir = Path(tempfile.mkdtemp(prefix="tw-dagtest-interrupt-"))
    os.chmod(data_dir, 0o755)
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env["TRADEWIND_DATA_DIR"] = str(data_dir)
    command = [sys.executable, str(MANAGE), "dags", "test", str(DAGS / "slow"), "--json"]
    process = subprocess.Popen(
        command, env=env, cwd=MANAGE.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 240
        while not any(b"sleeping" in log.read_bytes() for log in (data_dir / "logs").rglob("*.log")):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-2000:]
            time.sleep(0.2)
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        assert time.monotonic() - interrupted < 30  # the two-minute task was stopped, not waited for
        assert process.returncode != 0
        with sqlite3.connect(data_dir / "tradewind.sqlite3") as db:
            left = db.execute("SELECT count(*) FROM tenants_tenant WHERE slug LIKE 'dags-test-%'").fetchone()
        assert left == (0,)
        assert list((data_dir / "logs").iterdir()) == []
    finally:
        if process.poll() is None:
            process.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_readable_output_shows_final_states_and_each_failed_tasks_error_and_log(dags):
    result = dags("test", str(DAGS / "isolation" / "xcom_limit.py"))
    assert result.exit_code == 1
    out = result.stdout
    assert "DAG xcom_limit  run manual__" in out and out.count("failed") >= 2
    assert "  small    success" in out and "  too_big  failed" in out
    assert (
        "xcom_limit.too_big failed: ValueError: XCom 'return_value' of task xcom_limit.too_big is 2097154"
        in out
    )
    assert "last lines of its log:" in out and "    | [tradewind] attempt 1 ended: failed" in out
    assert "0 of 1 runs succeeded; 0 import errors" in out
    assert no_ephemeral_tenant_left()


def test_dag_id_logical_date_and_conf_options(dags):
    result = dags(
        "test",
        str(DAGS / "simple"),
        "--json",
        "--dag-id",
        "hello",
        "--logical-date",
        "2024-01-31",
        "--conf",
        '{"source": "cli"}',
    )
    assert result.exit_code == 0, result.stderr
    (run,) = result.document["dags"]
    assert run["run_id"] == "manual__2024-01-31T00:00:00+00:00" and run["state"] == "success"

    missing = dags("test", str(DAGS / "simple"), "--json", "--dag-id", "nope")
    assert missing.exit_code == 1
    assert missing.document == {"dags": [], "import_errors": {}}
    assert "DAG 'nope' not found" in missing.stderr and "DAGs found: hello" in missing.stderr


def test_conf_refused_by_the_dags_params_fails_that_run(dags):
    result = dags("test", str(DAGS / "teaching" / "xcom_jinja.py"), "--json", "--conf", '{"count": 0}')
    assert result.exit_code == 1
    assert result.document["dags"] == [
        {"dag_id": "xcom_jinja", "run_id": None, "state": "failed", "tasks": {}}
    ]
    assert "xcom_jinja" in result.stderr and "count" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/folder"], "does not exist"),
        ([str(DAGS / "simple"), "--conf", "{not json"], "--conf is not valid JSON"),
        ([str(DAGS / "simple"), "--conf", "[1, 2]"], "--conf must be a JSON object"),
        ([str(DAGS / "simple"), "--logical-date", "yesterday"], "--logical-date"),
        ([str(DAGS / "simple"), "--tenant", "no-such-tenant"], "no tenant with slug 'no-such-tenant'"),
    ],
)
def test_usage_errors_are_clear(dags, args, message):
    result = dags("test", *args)
    assert result.exit_code == 1 and message in result.stderr
    assert result.stdout == ""


def test_tenant_option_reads_that_tenants_secrets(dags, tenant):
    actor = Actor.system("tests")
    secrets.set_connection(
        tenant=tenant,
        actor=actor,
        fields={"conn_id": "warehouse", "conn_type": "http", "password": "pw-12345"},
    )
    secrets.set_variable(tenant=tenant, actor=actor, key="partner_api_key", value="key-12345")
    result = dags("test", str(DAGS / "isolation" / "masking.py"), "--json", "--tenant", tenant.slug)
    assert result.document["dags"][0]["tasks"] == {"leak": "failed"}  # it fails on purpose, after reading
    reads = AuditEntry.objects.filter(chain=tenant.pk, action="secret.read")
    assert {entry.detail["name"] for entry in reads} == {"warehouse", "partner_api_key"}
    assert all("masking.leak" in entry.actor_label for entry in reads)


def test_a_rejected_upload_is_reported_and_the_ephemeral_tenant_removed(dags, dag_copy):
    folder = dag_copy("simple")
    (folder / "escape.py").symlink_to("/etc/passwd")
    result = dags("test", str(folder), "--json")
    assert result.exit_code == 1
    assert result.document["dags"] == []
    (message,) = result.document["import_errors"].values()
    assert message.startswith("the upload was rejected:")
    assert no_ephemeral_tenant_left()


def test_the_ephemeral_tenant_its_bundle_files_and_logs_are_gone_afterwards(dags):
    before = set(Tenant.objects.values_list("slug", flat=True))
    result = dags("test", str(DAGS / "simple"), "--json")
    assert result.exit_code == 0
    assert set(Tenant.objects.values_list("slug", flat=True)) == before
    tenant_dirs = [p for p in Path(settings.BUNDLE_ROOT).iterdir() if p.name.isdigit()]
    assert tenant_dirs == []
    assert not Path(settings.LOG_ROOT).exists() or list(Path(settings.LOG_ROOT).iterdir()) == []


# --- dags upload -------------------------------------------------------------------------------------------


def test_upload_activates_a_repository_in_the_tenant(dags, tenant):
    result = dags("upload", "--tenant", tenant.slug, str(DAGS / "simple"), "--bundle", "analytics")
    assert result.exit_code == 0, result.stderr
    assert "DAGs found (1): hello" in result.stdout
    assert "Import errors: none" in result.stdout and "Activated: yes" in result.stdout
    dag = Dag.objects.get(tenant=tenant, dag_id="hello")
    assert dag.is_active and dag.bundle.name == "analytics"


def test_validate_only_reports_import_errors_without_activating(dags, dag_copy, tenant):
    folder = dag_copy("bad")
    (folder / "loops_forever.py").unlink()  # keeps the test fast; the other bad files are enough here
    result = dags("upload", "--tenant", tenant.slug, str(folder), "--validate-only")
    assert result.exit_code == 1
    assert "Import errors (5):" in result.stdout and "cycle.py:" in result.stdout
    assert "Activated: no" in result.stdout
    assert not Dag.objects.filter(tenant=tenant, dag_id="good", is_active=True).exists()


def test_a_rejected_archive_changes_nothing_and_fails(dags, tenant):
    archive = Path(tempfile.mkdtemp()) / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"print('escaped')\n"
        member = tarfile.TarInfo("../evil.py")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    result = dags("upload", "--tenant", tenant.slug, str(archive))
    shutil.rmtree(archive.parent, ignore_errors=True)
    assert result.exit_code == 1 and "upload rejected" in result.stderr
    assert not Dag.objects.filter(tenant=tenant).exists()


def test_upload_to_an_unknown_tenant_is_refused(dags):
    result = dags("upload", "--tenant", "nobody", str(DAGS / "simple"))
    assert result.exit_code == 1 and "no tenant with slug 'nobody'" in result.stderr
