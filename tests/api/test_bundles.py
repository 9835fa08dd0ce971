"""DAG repositories through the API: uploads (multipart or raw body, validate-only), hostile and oversized
archives refused with nothing changed, versions, activation, rollback, import errors, and who may do it."""

from __future__ import annotations

import tarfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from scheduler.models import BundleVersion, Dag
from tenants.roles import Role
from tests.api.helpers import api
from tests.bundles.conftest import dag_source, make_tar, make_zip, rows_of, stored_files

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

VERSIONS = "bundles/repo/versions"


def upload(client, tenant, archive: bytes, *, query: str = "", content_type: str = "application/zip"):
    """POST the archive as the raw request body."""
    return client.generic("POST", api(tenant, f"{VERSIONS}{query}"), archive, content_type=content_type)


def symlink_tar() -> bytes:
    link = tarfile.TarInfo("link.py")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return make_tar([("ok.py", b"x = 1\n"), link])


def repo(*dag_ids: str, broken: bool = False) -> bytes:
    members = [(f"{dag_id}.py", dag_source(dag_id).encode()) for dag_id in dag_ids]
    if broken:
        members.append(("broken.py", b"from tradewind.sdk import DAG\nimport nowhere_to_be_found\n"))
    return make_zip(members)


def test_multipart_upload_creates_an_active_version(tenant, api_for):
    client = api_for(tenant, Role.OP)
    archive = SimpleUploadedFile("repo.zip", repo("hello", "world"), content_type="application/zip")
    response = client.post(api(tenant, VERSIONS), {"file": archive}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["activated"] is True and body["dags"] == ["hello", "world"] and body["import_errors"] == []
    version = body["version"]
    assert (
        version["bundle_name"] == "repo" and version["version_number"] == 1 and version["state"] == "active"
    )
    assert version["file_count"] == 2 and version["dags"] == ["hello", "world"]
    assert sorted(Dag.objects.for_tenant(tenant).values_list("dag_id", flat=True)) == ["hello", "world"]
    listed = client.get(api(tenant, "dags")).json()
    assert [dag["dag_id"] for dag in listed["dags"]] == ["hello", "world"]


def test_raw_upload_import_errors_and_unchanged_content(tenant, api_for):
    client = api_for(tenant, Role.OP)
    response = upload(client, tenant, repo("hello", broken=True))
    assert response.status_code == 201
    (error,) = response.json()["import_errors"]
    assert error["filename"] == "broken.py" and "nowhere_to_be_found" in error["stack_trace"]
    again = upload(client, tenant, repo("hello", broken=True))
    assert again.status_code == 200 and again.json()["version"]["version_number"] == 1  # nothing new
    errors = client.get(api(tenant, "importErrors")).json()
    assert errors["total_entries"] == 1
    entry = errors["import_errors"][0]
    assert (
        entry["filename"] == "broken.py" and entry["bundle_name"] == "repo" and entry["bundle_version"] == 1
    )
    detail = client.get(api(tenant, f"importErrors/{entry['import_error_id']}")).json()
    assert detail == entry
    assert client.get(api(tenant, "importErrors/999999")).status_code == 404
    listed = client.get(api(tenant, "dags")).json()["dags"]
    assert [dag["has_import_errors"] for dag in listed] == [False]


def test_validate_only_keeps_the_active_version(tenant, api_for):
    client = api_for(tenant, Role.OP)
    upload(client, tenant, repo("hello"))
    response = upload(client, tenant, repo("hello", "extra"), query="?validate_only=true")
    assert response.status_code == 201
    body = response.json()
    assert body["activated"] is False and body["dags"] == ["extra", "hello"]
    assert body["version"]["state"] == "inactive" and body["version"]["validate_only"] is True
    assert list(Dag.objects.for_tenant(tenant).filter(is_active=True).values_list("dag_id", flat=True)) == [
        "hello"
    ]
    assert [dag["dag_id"] for dag in client.get(api(tenant, "dags")).json()["dags"]] == ["hello"]
    archive = SimpleUploadedFile("repo.tgz", make_tar([("x.py", dag_source("x").encode())]))
    response = client.post(
        api(tenant, VERSIONS), {"file": archive, "validate_only": "true"}, format="multipart"
    )
    assert response.status_code == 201 and response.json()["activated"] is False


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (make_zip([("../evil.py", b"x = 1\n")]), "archive member '../evil.py' escapes the bundle"),
        (make_zip([("/etc/evil.py", b"x = 1\n")]), "has an absolute path"),
        (symlink_tar(), "symlink 'link.py' is not allowed"),
        (b"just some bytes, not an archive", "not a .zip or .tar.gz archive"),
        (make_zip([]), "contains no files"),
    ],
)
def test_a_hostile_or_broken_archive_is_refused_and_changes_nothing(
    tenant, api_for, storage, archive, message
):
    client = api_for(tenant, Role.OP)
    upload(client, tenant, repo("hello"))
    rows, files = rows_of(tenant), stored_files(storage / "bundles")
    response = upload(client, tenant, archive)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert rows_of(tenant) == rows and stored_files(storage / "bundles") == files
    multipart = client.post(
        api(tenant, VERSIONS), {"file": SimpleUploadedFile("a.zip", archive)}, format="multipart"
    )
    assert multipart.status_code == 400 and message in multipart.json()["detail"]
    assert rows_of(tenant) == rows and stored_files(storage / "bundles") == files


def test_too_large_uploads_are_refused(tenant, api_for, storage):
    tenant.max_bundle_bytes = 10_000
    tenant.save()
    client = api_for(tenant, Role.OP)
    body = b"\0" * (2 * 10_000 + (1 << 20) + 1)
    response = upload(client, tenant, body, content_type="application/octet-stream")
    assert response.status_code == 413
    assert "above this tenant's limit of" in response.json()["detail"]
    bomb = make_zip([("big.py", b"#" * 50_000)])  # small compressed, too large uncompressed
    response = upload(client, tenant, bomb)
    assert response.status_code == 400 and "above the tenant's quota" in response.json()["detail"]
    assert rows_of(tenant)["BundleVersion"] == 0 and stored_files(storage / "bundles") == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": {"validate_only": "true"}, "format": "multipart"}, "multipart field 'file'"),
        ({"data": b"", "content_type": "application/zip"}, "the request has no archive"),
        ({"data": {"file": "x", "note": "hi"}, "format": "multipart"}, "Unknown field"),
    ],
)
def test_upload_without_an_archive_is_400(tenant, api_for, kwargs, message):
    client = api_for(tenant, Role.OP)
    if isinstance(kwargs.get("data"), bytes):
        response = client.generic(
            "POST", api(tenant, VERSIONS), kwargs["data"], content_type=kwargs["content_type"]
        )
    else:
        response = client.post(api(tenant, VERSIONS), **kwargs)
    assert response.status_code == 400 and message in response.content.decode()


def test_versions_activate_and_rollback(tenant, api_for):
    client = api_for(tenant, Role.OP)
    upload(client, tenant, repo("one"))
    upload(client, tenant, repo("two"))
    body = client.get(api(tenant, VERSIONS)).json()
    assert [(v["version_number"], v["state"]) for v in body["bundle_versions"]] == [
        (2, "active"),
        (1, "inactive"),
    ]
    assert client.get(api(tenant, f"{VERSIONS}/1")).json()["dags"] == ["one"]
    assert client.get(api(tenant, "bundles")).json()["bundles"][0] == {
        "name": "repo",
        "description": "",
        "active_version": 2,
        "created_at": client.get(api(tenant, "bundles/repo")).json()["created_at"],
    }
    response = client.post(api(tenant, f"{VERSIONS}/1/activate"))
    assert response.status_code == 200 and response.json()["state"] == "active"
    assert set(Dag.objects.filter(is_active=True).values_list("dag_id", flat=True)) == {"one"}
    response = client.post(api(tenant, "bundles/repo/rollback"), {"version_number": 2}, format="json")
    assert response.status_code == 200 and response.json()["version_number"] == 2
    assert set(Dag.objects.filter(is_active=True).values_list("dag_id", flat=True)) == {"two"}
    again = client.post(api(tenant, "bundles/repo/rollback"), {"version_number": 2}, format="json")
    assert again.status_code == 409 and "already the active version" in again.json()["detail"]
    missing = client.post(api(tenant, "bundles/repo/rollback"), {"version_number": 9}, format="json")
    assert missing.status_code == 404 and missing.json() == {"detail": "bundle 'repo' has no version 9"}
    bad = client.post(api(tenant, "bundles/repo/rollback"), {"version_number": "latest"}, format="json")
    assert bad.status_code == 400 and "version_number" in bad.json()
    assert client.get(api(tenant, f"{VERSIONS}/9")).status_code == 404
    assert client.get(api(tenant, "bundles/nope")).status_code == 404
    assert client.get(api(tenant, "bundles/nope/versions")).status_code == 404


def test_import_errors_of_one_version(tenant, api_for):
    client = api_for(tenant, Role.OP)
    upload(client, tenant, repo("hello", broken=True))
    upload(client, tenant, repo("hello"))
    assert client.get(api(tenant, "importErrors")).json()["total_entries"] == 0  # the active version is clean
    old = client.get(api(tenant, "importErrors?bundle_name=repo&version_number=1")).json()
    assert [e["filename"] for e in old["import_errors"]] == ["broken.py"]
    response = client.get(api(tenant, "importErrors?version_number=1"))
    assert response.status_code == 400 and "bundle_name" in response.content.decode()


def test_who_may_upload_and_read_bundles(tenant, other_tenant, api_for):
    assert upload(api_for(tenant, Role.USER), tenant, repo("hello")).status_code == 403
    assert BundleVersion.objects.count() == 0
    upload(api_for(other_tenant, Role.OP), other_tenant, repo("theirs", broken=True))
    viewer = api_for(tenant, Role.VIEWER)
    assert viewer.get(api(tenant, "bundles")).json() == {"bundles": [], "total_entries": 0}
    assert viewer.get(api(tenant, "importErrors")).json()["total_entries"] == 0
    assert viewer.get(api(tenant, "bundles/repo")).status_code == 404
    theirs = BundleVersion.objects.get().import_errors.get()
    assert viewer.get(api(tenant, f"importErrors/{theirs.pk}")).status_code == 404
    admin = api_for(tenant, Role.ADMIN)
    assert admin.post(api(tenant, "bundles/repo/versions/1/activate")).status_code == 404
    assert (
        admin.post(api(tenant, "bundles/repo/rollback"), {"version_number": 1}, format="json").status_code
        == 404
    )
    assert upload(admin, other_tenant, repo("x")).status_code == 404


def test_a_dag_whose_file_stopped_importing_shows_its_import_error(tenant, api_for):
    client = api_for(tenant, Role.OP)
    upload(client, tenant, repo("hello", "world"))
    broken = dag_source("hello") + "\nraise RuntimeError('the new code is broken')\n"
    response = upload(
        client, tenant, make_zip([("hello.py", broken.encode()), ("world.py", dag_source("world").encode())])
    )
    assert response.status_code == 201
    flags = {
        dag["dag_id"]: dag["has_import_errors"] for dag in client.get(api(tenant, "dags")).json()["dags"]
    }
    assert flags == {"hello": True, "world": False}  # hello keeps its last good version, flagged
    (error,) = client.get(api(tenant, "importErrors")).json()["import_errors"]
    assert error["filename"] == "hello.py" and "the new code is broken" in error["stack_trace"]
