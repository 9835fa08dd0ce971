"""Validate-only uploads, activation, rollback, broken files keeping their DAGs, and the audit trail."""

from __future__ import annotations

import pytest

from scheduler.bundles import activate_version, rollback, upload_bundle
from scheduler.models import Bundle, BundleVersion, Dag
from tradewind.audit.actions import AuditAction
from tradewind.audit.models import AuditEntry
from tradewind.errors import Conflict, NotFound

from .conftest import ACTOR, dag_source, write_tree

pytestmark = pytest.mark.django_db


def dag_state(tenant) -> dict[str, tuple[bool, int | None]]:
    """dag_id -> (is_active, number of its active DagVersion)."""
    return {
        dag.dag_id: (dag.is_active, dag.active_version.number if dag.active_version else None)
        for dag in Dag.objects.for_tenant(tenant).select_related("active_version")
    }


def actions(tenant) -> list[str]:
    return list(
        AuditEntry.objects.filter(tenant_id=tenant.pk, action__startswith="bundle.")
        .order_by("seq")
        .values_list("action", flat=True)
    )


def test_validate_only_reports_errors_and_activates_nothing(tenant, tmp_path):
    write_tree(tmp_path, {"a.py": dag_source("a")})
    v1 = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path).version
    write_tree(
        tmp_path,
        {"a.py": dag_source("a", tasks=3), "b.py": dag_source("b"), "bad.py": "import airflow.dag(\n"},
    )
    result = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path, validate_only=True)
    assert not result.activated
    assert result.dags == ["a", "b"]
    assert result.import_errors["bad.py"].startswith("SyntaxError while importing bad.py")
    version = result.version
    assert (version.number, version.state, version.validate_only) == (2, BundleVersion.State.INACTIVE, True)
    assert Bundle.objects.for_tenant(tenant).get().active_version == v1
    # The active version is untouched: "a" still runs version 1, the new DAG "b" exists but is not active.
    assert dag_state(tenant) == {"a": (True, 1), "b": (False, None)}
    assert Dag.objects.for_tenant(tenant).get(dag_id="a").active_version.bundle_version == v1
    assert actions(tenant) == ["bundle.uploaded", "bundle.activated", "bundle.uploaded"]

    activate_version(tenant=tenant, actor=ACTOR, version=version)
    assert dag_state(tenant) == {"a": (True, 2), "b": (True, 1)}
    assert Bundle.objects.for_tenant(tenant).get().active_version == version
    v1.refresh_from_db()
    assert v1.state == BundleVersion.State.INACTIVE
    assert actions(tenant)[-1] == AuditAction.BUNDLE_ACTIVATED


def test_rollback_reactivates_an_earlier_version(tenant, tmp_path):
    write_tree(tmp_path, {"a.py": dag_source("a"), "b.py": dag_source("b")})
    v1 = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path).version
    (tmp_path / "b.py").unlink()
    write_tree(tmp_path, {"a.py": dag_source("a", tasks=5), "c.py": dag_source("c")})
    v2 = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path).version
    assert dag_state(tenant) == {"a": (True, 2), "b": (False, 1), "c": (True, 1)}
    bundle = Bundle.objects.for_tenant(tenant).get()

    assert rollback(tenant=tenant, actor=ACTOR, bundle=bundle, number=1) == v1
    assert dag_state(tenant) == {"a": (True, 1), "b": (True, 1), "c": (False, 1)}
    a = Dag.objects.for_tenant(tenant).get(dag_id="a")
    assert len(a.active_version.serialized["tasks"]) == 2
    assert a.active_version.bundle_version == v1
    bundle.refresh_from_db()
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert bundle.active_version == v1
    assert (v1.state, v2.state) == (BundleVersion.State.ACTIVE, BundleVersion.State.INACTIVE)
    entry = AuditEntry.objects.filter(tenant_id=tenant.pk, action=AuditAction.BUNDLE_ROLLED_BACK).get()
    assert entry.detail["number"] == 1 and entry.detail["previous_number"] == 2

    # And forward again.
    rollback(tenant=tenant, actor=ACTOR, bundle=bundle, number=2)
    assert dag_state(tenant) == {"a": (True, 2), "b": (False, 1), "c": (True, 1)}


def test_rollback_refusals(tenant, tmp_path):
    write_tree(tmp_path, {"a.py": dag_source("a")})
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    bundle = Bundle.objects.for_tenant(tenant).get()
    with pytest.raises(NotFound, match="bundle 'default' has no version 7"):
        rollback(tenant=tenant, actor=ACTOR, bundle=bundle, number=7)
    with pytest.raises(Conflict, match="version 1 is already the active version of bundle 'default'"):
        rollback(tenant=tenant, actor=ACTOR, bundle=bundle, number=1)


def test_a_broken_file_keeps_its_dags_previous_version(tenant, tmp_path):
    """As in Airflow, a DAG whose file stops importing stays active with its last good version (and the
    files that produced it), next to the import error."""
    write_tree(tmp_path, {"a.py": dag_source("a"), "b.py": dag_source("b")})
    v1 = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path).version
    write_tree(tmp_path, {"a.py": dag_source("a") + "raise RuntimeError('half-finished edit')\n"})
    write_tree(tmp_path, {"b.py": dag_source("b", tasks=4)})
    result = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    assert result.dags == ["a", "b"]
    assert result.import_errors["a.py"].startswith("RuntimeError while importing a.py: half-finished edit")
    assert result.version.dags["a"]["carried"] is True
    assert dag_state(tenant) == {"a": (True, 1), "b": (True, 2)}
    a = Dag.objects.for_tenant(tenant).get(dag_id="a")
    assert a.active_version.bundle_version == v1  # its last good files, not the broken ones

    (tmp_path / "a.py").unlink()
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    assert dag_state(tenant)["a"] == (False, 1)


def test_activation_refuses_another_tenants_version(tenant, other_tenant, tmp_path):
    write_tree(tmp_path, {"a.py": dag_source("a")})
    version = upload_bundle(tenant=other_tenant, actor=ACTOR, source=tmp_path).version
    with pytest.raises(NotFound):
        activate_version(tenant=tenant, actor=ACTOR, version=version)
    with pytest.raises(NotFound):
        rollback(tenant=tenant, actor=ACTOR, bundle=version.bundle, number=1)
