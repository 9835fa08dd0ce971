"""Connections and variables: encrypted at rest, masked in answers, Vault first then the database."""

from __future__ import annotations

import json

import pytest
from django.db import connection as db

from tenants.roles import Role
from tradewind.accounts.actors import Actor
from tradewind.audit.models import AuditEntry
from tradewind.errors import Conflict, Invalid
from tradewind.secrets import keys, services
from tradewind.secrets import vault as vault_backend
from tradewind.secrets.models import DataKey
from tradewind.secrets.vault import SecretsBackendUnavailable

ACTOR = Actor.system("tests")
PASSWORD = "Pa55-w0rd!that-is-long"
TOKEN = "tok-9f8e7d6c5b4a"
SECRET_VALUE = "sk_live_0123456789abcdef"


def seed(tenant) -> None:
    services.set_connection(
        tenant=tenant,
        actor=ACTOR,
        fields={
            "conn_id": "warehouse",
            "conn_type": "postgres",
            "host": "db.internal",
            "login": "etl",
            "password": PASSWORD,
            "port": 5432,
            "schema": "sales",
            "extra": json.dumps({"sslmode": "require", "token": TOKEN}),
        },
    )
    services.set_variable(tenant=tenant, actor=ACTOR, key="stripe_api_key", value=SECRET_VALUE)
    services.set_variable(tenant=tenant, actor=ACTOR, key="region", value="eu-west-1")


def raw_rows() -> str:
    dump = []
    with db.cursor() as cursor:
        for table in ("secrets_connection", "secrets_variable", "secrets_datakey", "audit_auditentry"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            dump.append(repr(cursor.fetchall()))
    return "\n".join(dump)


def test_raw_database_rows_hold_no_secret_in_clear(tenant, settings):
    seed(tenant)
    assert services.get_variable(tenant=tenant, key="stripe_api_key") == SECRET_VALUE
    dump = raw_rows()
    for secret in (PASSWORD, TOKEN, SECRET_VALUE, "eu-west-1", "sslmode"):
        assert secret not in dump
    assert all(key not in dump for key in settings.FERNET_KEYS)
    assert keys.unwrap(DataKey.objects.for_tenant(tenant).get()).decode() not in dump  # stored only wrapped


def test_each_tenant_has_its_own_data_key(tenant, other_tenant):
    seed(tenant)
    seed(other_tenant)
    ours, theirs = DataKey.objects.for_tenant(tenant).get(), DataKey.objects.for_tenant(other_tenant).get()
    assert ours.wrapped_key != theirs.wrapped_key
    assert keys.unwrap(ours) != keys.unwrap(theirs)


def test_task_reads_return_airflows_fields_and_are_audited(tenant):
    seed(tenant)
    conn = services.get_connection(tenant=tenant, conn_id="warehouse", actor=Actor.system("task t1"))
    assert conn == {
        "conn_id": "warehouse",
        "conn_type": "postgres",
        "description": None,
        "host": "db.internal",
        "schema": "sales",
        "login": "etl",
        "password": PASSWORD,
        "port": 5432,
        "extra": json.dumps({"sslmode": "require", "token": TOKEN}),
    }
    read = AuditEntry.objects.for_tenant(tenant).filter(action="secret.read").get()
    assert read.actor_label == "task t1" and read.detail == {
        "kind": "connection",
        "name": "warehouse",
        "source": "database",
    }
    assert services.get_variable(tenant=tenant, key="missing") is None
    assert AuditEntry.objects.for_tenant(tenant).filter(action="secret.read").count() == 1


def test_api_and_ui_never_show_secret_values(tenant, api_for, browser_for):
    seed(tenant)
    for role in (Role.VIEWER, Role.ADMIN):
        client = api_for(tenant, role)
        conn = client.get(f"/t/{tenant.slug}/api/v1/connections/warehouse/").json()
        assert conn["password"] == "***" and conn["extra"] == {"sslmode": "***", "token": "***"}
        assert conn["host"] == "db.internal" and conn["login"] == "etl"
        variables = {
            v["key"]: v["value"] for v in client.get(f"/t/{tenant.slug}/api/v1/variables/").json()["results"]
        }
        assert variables == {"region": "eu-west-1", "stripe_api_key": "***"}
        for page in ("connections/", "variables/"):
            content = browser_for(tenant, role).get(f"/t/{tenant.slug}/{page}").content.decode()
            assert PASSWORD not in content and SECRET_VALUE not in content and TOKEN not in content
    audit = "".join(json.dumps([e.before, e.after, e.detail]) for e in AuditEntry.objects.all())
    assert PASSWORD not in audit and SECRET_VALUE not in audit and TOKEN not in audit


def test_api_edit_keeps_omitted_fields_and_validates(tenant, api_for):
    seed(tenant)
    client = api_for(tenant, Role.OP)
    url = f"/t/{tenant.slug}/api/v1/connections/warehouse/"
    assert client.patch(url, {"host": "db2.internal"}, format="json").status_code == 200
    conn = services.get_connection(tenant=tenant, conn_id="warehouse")
    assert conn["host"] == "db2.internal" and conn["password"] == PASSWORD
    assert client.patch(url, {"extra": "{not json"}, format="json").status_code == 400
    created = client.post(
        f"/t/{tenant.slug}/api/v1/connections/", {"conn_id": "warehouse", "uri": "http://x"}, format="json"
    )
    assert created.status_code == 409
    with pytest.raises(Invalid):
        services.set_connection(
            tenant=tenant, actor=ACTOR, fields={"conn_id": "bad id!", "conn_type": "http"}
        )
    with pytest.raises(Conflict):
        services.set_connection(
            tenant=tenant, actor=ACTOR, fields={"conn_id": "warehouse", "conn_type": "x"}, create_only=True
        )


def test_vault_first_then_database(tenant, other_tenant, vault):
    seed(tenant)
    vault_backend_write = vault_backend.write_secret
    vault_backend_write(tenant, "variables", "region", {"value": "from-vault"})
    vault_backend_write(
        tenant, "connections", "api", {"conn_uri": "https://user:vault-pw@api.example:443/v1"}
    )
    vault_backend_write(other_tenant, "variables", "region", {"value": "theirs"})
    assert services.get_variable(tenant=tenant, key="region") == "from-vault"
    assert services.get_variable(tenant=tenant, key="stripe_api_key") == SECRET_VALUE  # not in Vault: DB
    conn = services.get_connection(tenant=tenant, conn_id="api")
    assert (
        conn["conn_type"],
        conn["host"],
        conn["login"],
        conn["password"],
        conn["port"],
        conn["schema"],
    ) == ("https", "api.example", "user", "vault-pw", 443, "v1")
    # Connection fields instead of a URI, as Airflow's Vault backend also accepts.
    vault_backend_write(
        tenant, "connections", "fields", {"conn_type": "http", "host": "h", "password": "pw-123456"}
    )
    assert services.get_connection(tenant=tenant, conn_id="fields")["password"] == "pw-123456"
    reads = (
        AuditEntry.objects.for_tenant(tenant).filter(action="secret.read").values_list("detail", flat=True)
    )
    assert {"kind": "variable", "name": "region", "source": "vault"} in list(reads)
    # Per-tenant prefix: the paths Vault saw are all under this tenant's prefix.
    paths = {path for method, path in vault.requests if "/secret/data/" in path}
    assert f"/v1/secret/data/tradewind/{tenant.slug}/variables/region" in paths


def test_vault_reads_are_cached_for_the_ttl(tenant, vault, settings):
    write = vault_backend.write_secret
    write(tenant, "variables", "color", {"value": "red"})
    assert services.get_variable(tenant=tenant, key="color") == "red"
    vault.kv[f"tradewind/{tenant.slug}/variables/color"]["versions"][1]["data"] = {
        "value": "blue"
    }  # changed in Vault
    assert services.get_variable(tenant=tenant, key="color") == "red"  # cached
    vault_backend.clear_cache()
    settings.TRADEWIND_VAULT_CACHE_TTL = 0
    assert services.get_variable(tenant=tenant, key="color") == "blue"
    reads_before = len(vault.requests)
    services.get_variable(tenant=tenant, key="color")
    assert len(vault.requests) == reads_before + 1  # TTL 0: no cache


def test_vault_down_is_a_clear_error(tenant, vault):
    seed(tenant)
    vault.sealed = True
    with pytest.raises(SecretsBackendUnavailable, match=f"Vault at {vault.url} is unavailable"):
        services.get_variable(tenant=tenant, key="region")
    vault.sealed = False
    vault.stop()
    vault_backend.clear_cache()
    with pytest.raises(SecretsBackendUnavailable, match="is unavailable"):
        services.get_connection(tenant=tenant, conn_id="warehouse")


def test_vault_with_a_bad_token_is_a_clear_error(tenant, vault, settings):
    settings.TRADEWIND_VAULT_TOKEN = "not-the-token"
    with pytest.raises(SecretsBackendUnavailable, match="Forbidden"):
        services.get_variable(tenant=tenant, key="x")


def test_data_keys_wrapped_by_vault_transit(tenant, vault, settings):
    settings.TRADEWIND_KEY_WRAPPER = "vault"
    seed(tenant)
    key = DataKey.objects.for_tenant(tenant).get()
    assert key.wrapper == "vault" and key.wrapped_key.startswith("vault:v1:")
    assert services.get_connection(tenant=tenant, conn_id="warehouse")["password"] == PASSWORD
    assert ("POST", f"/v1/transit/encrypt/{settings.TRADEWIND_VAULT_TRANSIT_KEY}") in vault.requests


def test_a_tenant_with_secrets_can_be_deleted(tenant):
    seed(tenant)
    tenant.delete()  # `dags test` deletes its throw-away tenant this way
    assert not DataKey.objects.exists()
