"""The fake Vault answers the real hvac client the way Vault does (so the security tests mean something)."""

from __future__ import annotations

import base64

import hvac
import pytest
from hvac import exceptions

from tests.vault.server import FakeVault


@pytest.fixture
def fake():
    server = FakeVault().start()
    yield server
    server.stop()


def client(fake: FakeVault, token: str | None = None) -> hvac.Client:
    return hvac.Client(url=fake.url, token=token or fake.root_token, timeout=2)


def test_token_auth(fake):
    assert client(fake).is_authenticated()
    assert client(fake).auth.token.lookup_self()["data"]["id"] == fake.root_token
    assert not client(fake, "wrong").is_authenticated()
    with pytest.raises(exceptions.Forbidden):
        client(fake, "wrong").secrets.kv.v2.read_secret_version(path="x", raise_on_deleted_version=True)


def test_kv_v2_versions_cas_list_delete(fake):
    kv = client(fake).secrets.kv.v2
    assert kv.create_or_update_secret(path="app/db", secret={"password": "one"})["data"]["version"] == 1
    kv.create_or_update_secret(path="app/db", secret={"password": "two"}, cas=1)
    with pytest.raises(exceptions.InvalidRequest):
        kv.create_or_update_secret(path="app/db", secret={"password": "three"}, cas=1)
    latest = kv.read_secret_version(path="app/db", raise_on_deleted_version=True)
    assert latest["data"]["data"] == {"password": "two"}
    assert latest["data"]["metadata"]["version"] == 2
    first = kv.read_secret_version(path="app/db", version=1, raise_on_deleted_version=True)
    assert first["data"]["data"] == {"password": "one"}
    kv.create_or_update_secret(path="app/nested/x", secret={"a": "b"})
    assert kv.list_secrets(path="app")["data"]["keys"] == ["db", "nested/"]
    assert kv.read_secret_metadata(path="app/db")["data"]["current_version"] == 2
    kv.delete_latest_version_of_secret(path="app/db")
    with pytest.raises(exceptions.InvalidPath):
        kv.read_secret_version(path="app/db", raise_on_deleted_version=True)
    deleted = kv.read_secret_version(path="app/db", raise_on_deleted_version=False)
    assert deleted["data"]["metadata"]["deletion_time"] != ""
    kv.delete_metadata_and_all_versions(path="app/db")
    with pytest.raises(exceptions.InvalidPath):
        kv.read_secret_metadata(path="app/db")
    with pytest.raises(exceptions.InvalidPath):
        kv.list_secrets(path="nothing-here")


def test_transit_encrypt_decrypt_rotate_rewrap(fake):
    transit = client(fake).secrets.transit
    plaintext = base64.b64encode(b"data key bytes").decode()
    first = transit.encrypt_data(name="k", plaintext=plaintext)["data"]["ciphertext"]
    assert first.startswith("vault:v1:")
    assert transit.decrypt_data(name="k", ciphertext=first)["data"]["plaintext"] == plaintext
    transit.rotate_key(name="k")
    assert transit.read_key(name="k")["data"]["latest_version"] == 2
    rewrapped = transit.rewrap_data(name="k", ciphertext=first)["data"]["ciphertext"]
    assert rewrapped.startswith("vault:v2:")
    transit.update_key_configuration(name="k", min_decryption_version=2)
    assert transit.decrypt_data(name="k", ciphertext=rewrapped)["data"]["plaintext"] == plaintext
    with pytest.raises(exceptions.InvalidRequest):
        transit.decrypt_data(name="k", ciphertext=first)
    tampered = rewrapped[:-4] + ("AAAA" if not rewrapped.endswith("AAAA") else "BBBB")
    with pytest.raises(exceptions.InvalidRequest):
        transit.decrypt_data(name="k", ciphertext=tampered)


def test_sealed_and_down(fake):
    fake.sealed = True
    with pytest.raises(exceptions.VaultDown):
        client(fake).secrets.kv.v2.read_secret_version(path="x", raise_on_deleted_version=True)
    assert client(fake).sys.read_health_status(method="GET")["sealed"] is True
