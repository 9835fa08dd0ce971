"""`manage.py connections|variables import|export` in Airflow's JSON, YAML and .env formats."""

from __future__ import annotations

import io
import json
import textwrap

import pytest
import yaml
from django.core.management import CommandError, call_command

from tenants.roles import Role
from tradewind.accounts.actors import Actor
from tradewind.audit.models import AuditEntry
from tradewind.secrets import formats, services
from tradewind.secrets.models import Variable


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


CONNECTIONS_JSON = {
    "pg": "postgresql://etl:p%40ss%2Fword@db.example.com:5432/sales?sslmode=require",
    "api": {
        "conn_type": "http",
        "host": "https://api.example.com",
        "login": "robot",
        "password": "s3cret-pw",
        "port": 443,
        "extra": {"timeout": 30, "headers": {"X-Team": "data"}},
        "description": "the partner API",
    },
    "gcp": {"conn_type": "google_cloud_platform", "extra": '{"project": "p1", "keyfile_dict": {"k": "v"}}'},
}


def test_connections_import_json_and_read_back(tenant, tmp_path):
    path = tmp_path / "conns.json"
    path.write_text(json.dumps(CONNECTIONS_JSON))
    out = run("connections", "import", str(path), "--tenant", tenant.slug)
    assert "3 created" in out
    pg = services.get_connection(tenant=tenant, conn_id="pg")
    assert (pg["conn_type"], pg["login"], pg["password"], pg["host"], pg["port"], pg["schema"]) == (
        "postgres",
        "etl",
        "p@ss/word",
        "db.example.com",
        5432,
        "sales",
    )
    assert json.loads(pg["extra"]) == {"sslmode": "require"}
    api = services.get_connection(tenant=tenant, conn_id="api")
    assert api["host"] == "https://api.example.com" and json.loads(api["extra"])["headers"] == {
        "X-Team": "data"
    }
    assert api["description"] == "the partner API"
    # Existing conn_ids are skipped unless --overwrite (Airflow's behaviour).
    CONNECTIONS_JSON_2 = {"pg": "postgres://other@h/db"}
    path.write_text(json.dumps(CONNECTIONS_JSON_2))
    assert "1 skipped" in run("connections", "import", str(path), "--tenant", tenant.slug)
    assert services.get_connection(tenant=tenant, conn_id="pg")["login"] == "etl"
    assert "1 updated" in run("connections", "import", str(path), "--tenant", tenant.slug, "--overwrite")
    assert services.get_connection(tenant=tenant, conn_id="pg")["login"] == "other"


def test_connections_import_yaml_and_env(tenant, tmp_path):
    (tmp_path / "conns.yaml").write_text(
        yaml.safe_dump({"y1": {"conn_type": "ftp", "host": "ftp.example", "password": "pw-12345"}})
    )
    run("connections", "import", str(tmp_path / "conns.yaml"), "--tenant", tenant.slug)
    (tmp_path / "conns.env").write_text(
        textwrap.dedent("""\
        # comment lines and blank lines are ignored

        e1=mysql://user:pw@mysql.example:3306/db
        e2={"conn_type": "http", "host": "example.org"}
    """)
    )
    run("connections", "import", str(tmp_path / "conns.env"), "--tenant", tenant.slug)
    assert services.get_connection(tenant=tenant, conn_id="y1")["password"] == "pw-12345"
    assert services.get_connection(tenant=tenant, conn_id="e1")["port"] == 3306
    assert services.get_connection(tenant=tenant, conn_id="e2")["host"] == "example.org"
    (tmp_path / "dup.env").write_text("a=http://h\na=http://i\n")
    with pytest.raises(CommandError, match="defined twice"):
        run("connections", "import", str(tmp_path / "dup.env"), "--tenant", tenant.slug)


@pytest.mark.parametrize("suffix", ["json", "yaml", "env"])
def test_connections_export_round_trips(tenant, other_tenant, tmp_path, suffix):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(CONNECTIONS_JSON))
    run("connections", "import", str(source), "--tenant", tenant.slug)
    exported = tmp_path / f"out.{suffix}"
    run("connections", "export", str(exported), "--tenant", tenant.slug)
    text = exported.read_text()
    if suffix == "json":
        data = json.loads(text)
        assert set(data) == {"api", "gcp", "pg"} and data["api"]["password"] == "s3cret-pw"
        assert set(data["pg"]) == {
            "conn_type",
            "description",
            "host",
            "schema",
            "login",
            "password",
            "port",
            "extra",
        }
    if suffix == "env":
        assert (
            "pg=postgres://etl:p%40ss%2Fword@db.example.com:5432/sales?sslmode=require" in text.splitlines()
        )
    run("connections", "import", str(exported), "--tenant", other_tenant.slug)
    for conn_id in CONNECTIONS_JSON:
        mine = services.get_connection(tenant=tenant, conn_id=conn_id)
        theirs = services.get_connection(tenant=other_tenant, conn_id=conn_id)
        if suffix == "env":  # a URI has no description (Airflow's format): everything else survives
            mine["description"] = None
        assert {**mine, "extra": json.loads(mine["extra"] or "{}")} == {
            **theirs,
            "extra": json.loads(theirs["extra"] or "{}"),
        }
    assert AuditEntry.objects.for_tenant(tenant).filter(action="secrets.exported").exists()


def test_connections_export_env_as_json(tenant, tmp_path):
    services.set_connection(
        tenant=tenant, actor=Actor.system(), fields={"conn_id": "h", "conn_type": "http", "host": "x"}
    )
    out = tmp_path / "c.env"
    run("connections", "export", str(out), "--tenant", tenant.slug, "--serialization-format", "json")
    key, _, value = out.read_text().strip().partition("=")
    assert key == "h" and json.loads(value)["host"] == "x"


def test_variables_import_export_formats(tenant, other_tenant, tmp_path):
    (tmp_path / "v.json").write_text(
        json.dumps(
            {
                "plain": "text",
                "number": 3,
                "nested": {"a": [1, 2]},
                "described": {"value": "v", "description": "d"},
            }
        )
    )
    out = run("variables", "import", str(tmp_path / "v.json"), "--tenant", tenant.slug)
    assert "4 of 4 variables successfully imported" in out
    assert services.get_variable(tenant=tenant, key="nested") == '{"a": [1, 2]}'
    assert services.get_variable(tenant=tenant, key="number") == "3"
    assert Variable.objects.for_tenant(tenant).get(key="described").description == "d"
    (tmp_path / "v.yaml").write_text("from_yaml: hello\n")
    (tmp_path / "v.env").write_text("FROM_ENV=a=b=c\n# no\n")
    run("variables", "import", str(tmp_path / "v.yaml"), "--tenant", tenant.slug)
    run("variables", "import", str(tmp_path / "v.env"), "--tenant", tenant.slug)
    assert services.get_variable(tenant=tenant, key="FROM_ENV") == "a=b=c"
    exported = tmp_path / "out.json"
    run("variables", "export", str(exported), "--tenant", tenant.slug)
    data = json.loads(exported.read_text())
    assert data["nested"] == {"a": [1, 2]} and data["plain"] == "text" and data["number"] == 3
    for suffix in ("yaml", "env"):
        run("variables", "export", str(tmp_path / f"out.{suffix}"), "--tenant", tenant.slug)
        run("variables", "import", str(tmp_path / f"out.{suffix}"), "--tenant", other_tenant.slug)
    assert services.get_variable(tenant=other_tenant, key="nested") == '{"a": [1, 2]}'
    assert services.get_variable(tenant=other_tenant, key="FROM_ENV") == "a=b=c"


def test_variables_action_on_existing_key(tenant, tmp_path):
    services.set_variable(tenant=tenant, actor=Actor.system(), key="k", value="old")
    (tmp_path / "v.json").write_text(json.dumps({"k": "new", "other": "x"}))
    with pytest.raises(CommandError, match="already exists"):
        run("variables", "import", str(tmp_path / "v.json"), "--tenant", tenant.slug, "-a", "fail")
    assert services.get_variable(tenant=tenant, key="other") is None  # all or nothing
    run("variables", "import", str(tmp_path / "v.json"), "--tenant", tenant.slug, "-a", "skip")
    assert services.get_variable(tenant=tenant, key="k") == "old"
    run("variables", "import", str(tmp_path / "v.json"), "--tenant", tenant.slug)
    assert services.get_variable(tenant=tenant, key="k") == "new"


def test_commands_acting_for_a_member_check_their_role(tenant, make_member, tmp_path):
    viewer = make_member(tenant, Role.VIEWER)
    op = make_member(tenant, Role.OP)
    (tmp_path / "v.json").write_text(json.dumps({"k": "v"}))
    with pytest.raises(CommandError, match="may not"):
        run("variables", "import", str(tmp_path / "v.json"), "--tenant", tenant.slug, "--as", viewer.username)
    with pytest.raises(CommandError, match="may not"):
        run("connections", "export", "-", "--tenant", tenant.slug, "--as", viewer.username)
    run("variables", "import", str(tmp_path / "v.json"), "--tenant", tenant.slug, "--as", op.username)
    entry = AuditEntry.objects.for_tenant(tenant).filter(action="variable.set").get()
    assert entry.actor_kind == "user" and entry.actor_user_id == op.pk
    with pytest.raises(CommandError, match="not a member"):
        run("variables", "list", "--tenant", tenant.slug, "--as", "nobody")


def test_uri_helpers_follow_airflow():
    fields = formats.connection_from_any("x", "google-cloud-platform://?extra__key=1")
    assert fields["conn_type"] == "google_cloud_platform"
    with_protocol = {
        "conn_id": "x",
        "conn_type": "http",
        "description": None,
        "host": "https://h.example",
        "login": None,
        "password": None,
        "schema": None,
        "port": None,
        "extra": None,
    }
    uri = formats.connection_uri(with_protocol)
    assert uri == "http://https://h.example"  # Airflow >= 2.3 keeps a protocol in the host like this
    assert formats.connection_from_any("x", uri) == with_protocol
    with pytest.raises(Exception, match="unexpected field"):
        formats.connection_from_any("x", {"conn_type": "http", "hots": "typo"})
