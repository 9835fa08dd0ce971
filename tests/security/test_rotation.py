"""Key rotation while the system runs: every value stays readable, and afterwards the old key is useless."""

from __future__ import annotations

import io
import threading

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection as db
from django.db import connections

from tradewind.accounts.actors import Actor
from tradewind.audit.models import AuditEntry
from tradewind.secrets import keys, services
from tradewind.secrets.models import Connection, DataKey, Variable

ACTOR = Actor.system("tests")


def seed(tenant, count: int = 3) -> dict[str, str]:
    values = {f"secret_{i}": f"value-{i}-{tenant.slug}-xyz" for i in range(count)}
    for key, value in values.items():
        services.set_variable(tenant=tenant, actor=ACTOR, key=key, value=value)
    services.set_connection(
        tenant=tenant,
        actor=ACTOR,
        fields={
            "conn_id": "db",
            "uri": f"postgres://u:pw-{tenant.slug}-123@h:5432/s?token=t-{tenant.slug}-456",
        },
    )
    return values


def read_all(tenant) -> tuple[dict[str, str], dict]:
    values = {
        row.key: services.variable_value(row)
        for row in Variable.objects.for_tenant(tenant).select_related("data_key")
    }
    conn = services.connection_fields(Connection.objects.for_tenant(tenant).select_related("data_key").get())
    return values, conn


def ciphertexts() -> set[str]:
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT encrypted_value FROM secrets_variable UNION ALL SELECT encrypted_password FROM secrets_connection"
        )
        return {row[0] for row in cursor.fetchall()}


def test_rotate_keys_reencrypts_everything_and_retires_the_old_key(tenant, other_tenant, settings):
    old_key = settings.FERNET_KEYS[0]
    seed(tenant)
    seed(other_tenant)
    before = {t.slug: read_all(t) for t in (tenant, other_tenant)}
    old_data_keys = set(DataKey.objects.values_list("pk", flat=True))
    old_ciphertexts = ciphertexts()

    new_key = Fernet.generate_key().decode()
    settings.FERNET_KEYS = [new_key, old_key]
    out = io.StringIO()
    call_command("rotate-keys", stdout=out)
    assert "acme: re-wrapped 1 data key(s), re-encrypted 4 value row(s), retired 1" in out.getvalue()

    assert {t.slug: read_all(t) for t in (tenant, other_tenant)} == before
    assert not old_data_keys & set(DataKey.objects.values_list("pk", flat=True))
    assert not old_ciphertexts & ciphertexts()
    # The old platform key can be removed: everything still reads with the new key alone...
    settings.FERNET_KEYS = [new_key]
    keys._fernets.clear()
    assert {t.slug: read_all(t) for t in (tenant, other_tenant)} == before
    # ...and the old key alone can no longer decrypt the rows written since.
    services.set_variable(tenant=tenant, actor=ACTOR, key="after_rotation", value="new-secret-value")
    settings.FERNET_KEYS = [old_key]
    keys._fernets.clear()
    with pytest.raises(keys.UndecryptableSecret):
        services.get_variable(tenant=tenant, key="after_rotation")
    with pytest.raises(keys.UndecryptableSecret):
        services.get_variable(tenant=tenant, key="secret_0")
    assert (
        AuditEntry.objects.for_tenant(tenant).filter(action="key.rotated", actor_label="rotate-keys").exists()
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_values_stay_readable_while_rotation_runs(tenant, settings):
    if db.vendor != "postgresql":
        pytest.skip("concurrent readers need a server database; embedded SQLite has one writer")
    values = seed(tenant, count=40)
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), settings.FERNET_KEYS[0]]
    failures: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                for key, value in values.items():
                    got = services.get_variable(tenant=tenant, key=key)
                    if got != value:
                        failures.append(f"{key}: {got!r}")
        except Exception as error:  # any error while reading is a failure of the test
            failures.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):
            call_command("rotate-keys", "--tenant", tenant.slug, stdout=io.StringIO())
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert DataKey.objects.for_tenant(tenant).count() == 1
    assert read_all(tenant)[0] == values


def test_rotation_with_vault_transit(tenant, vault, settings):
    settings.TRADEWIND_KEY_WRAPPER = "vault"
    before_values = seed(tenant)
    assert DataKey.objects.for_tenant(tenant).get().wrapped_key.startswith("vault:v1:")
    out = io.StringIO()
    call_command("rotate-keys", "--rotate-transit-key", stdout=out)
    assert "Vault transit key is now at version 2" in out.getvalue()
    assert DataKey.objects.for_tenant(tenant).get().wrapped_key.startswith("vault:v2:")
    assert read_all(tenant)[0] == before_values


def test_switching_from_fernet_to_vault_wrapping(tenant, vault, settings):
    before_values = seed(tenant)
    assert DataKey.objects.for_tenant(tenant).get().wrapper == "fernet"
    settings.TRADEWIND_KEY_WRAPPER = "vault"
    call_command("rotate-keys", stdout=io.StringIO())
    key = DataKey.objects.for_tenant(tenant).get()
    assert key.wrapper == "vault" and key.wrapped_key.startswith("vault:")
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]  # the platform keys no longer matter
    keys._fernets.clear()
    assert read_all(tenant)[0] == before_values
