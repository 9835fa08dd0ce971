"""Tenants never see or touch each other's repositories, DAGs, parse cache or files."""

from __future__ import annotations

import pytest

from scheduler.bundles import bundle_root, upload_bundle
from scheduler.models import Dag, ParsedFile

from .conftest import ACTOR, dag_source, write_tree

pytestmark = pytest.mark.django_db


def dags_of(tenant) -> dict[str, tuple[bool, int, str]]:
    return {
        dag.dag_id: (dag.is_active, dag.active_version.number, dag.active_version.hash)
        for dag in Dag.objects.for_tenant(tenant).select_related("active_version")
    }


def test_same_dag_id_in_two_tenants_and_uploads_never_cross(tenant, other_tenant, tmp_path, monkeypatch):
    write_tree(tmp_path / "a", {"shared.py": dag_source("shared"), "only_a.py": dag_source("only_a")})
    a_version = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path / "a").version
    before = dags_of(tenant)

    # Tenant B: the same dag_id, and the same file content (so the same parse-cache key).
    write_tree(tmp_path / "b", {"shared.py": dag_source("shared")})
    b_result = upload_bundle(tenant=other_tenant, actor=ACTOR, source=tmp_path / "b")
    assert b_result.dags == ["shared"] and b_result.import_errors == {}
    assert dags_of(tenant) == before
    assert set(dags_of(other_tenant)) == {"shared"}
    # B's cache entry is its own row, not A's.
    assert ParsedFile.objects.for_tenant(other_tenant).count() == 1

    # B replaces its repository: A's DAGs stay active, at the same versions.
    write_tree(tmp_path / "b", {"shared.py": dag_source("shared", tasks=6), "new.py": dag_source("only_a")})
    upload_bundle(tenant=other_tenant, actor=ACTOR, source=tmp_path / "b")
    assert dags_of(tenant) == before
    assert dags_of(other_tenant)["shared"][1] == 2

    # Files are stored per tenant, even for identical content.
    write_tree(tmp_path / "c", {"shared.py": dag_source("shared"), "only_a.py": dag_source("only_a")})
    c_version = upload_bundle(tenant=other_tenant, actor=ACTOR, source=tmp_path / "c").version
    assert c_version.content_hash == a_version.content_hash
    assert bundle_root(c_version) != bundle_root(a_version)
    assert bundle_root(a_version).parent.name == str(tenant.pk)
