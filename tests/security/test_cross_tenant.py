"""Another tenant's rows are not found (404) through every tenant API, for every tenant-owned model with one."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

from tenants.models import Membership, Tenant, TenantOwned
from tenants.roles import Role
from tenants.scoping import TenantViewSet
from tradewind.accounts import grants
from tradewind.accounts import services as accounts
from tradewind.accounts.actors import Actor
from tradewind.accounts.models import ApiToken, ServiceAccount, TenantGroup
from tradewind.audit.models import AuditEntry
from tradewind.secrets import services as secrets
from tradewind.secrets.models import Connection, Variable

ACTOR = Actor.system("tests")


def _viewsets() -> dict[type, type]:
    """Every TenantViewSet routed in the URLconf, by the model it serves."""
    found: dict[type, type] = {}

    def walk(patterns: list) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                cls = getattr(pattern.callback, "cls", None)
                if cls is not None and issubclass(cls, TenantViewSet):
                    found[cls.queryset.model] = cls

    walk(get_resolver().url_patterns)
    return found


# For each model served by a tenant API: create a row in `owner` (through the services) and return
# (the API path segment, the row's lookup value, the marker text that must never appear in B's answers).
def _membership(owner: Tenant, make_member: Callable, make_dag: Callable) -> tuple[str, str, str]:
    user = make_member(owner, Role.ADMIN, username="stranger-admin")
    return "members", str(Membership.objects.get(user=user).pk), "stranger-admin"


def _connection(owner, make_member, make_dag):
    secrets.set_connection(
        tenant=owner, actor=ACTOR, fields={"conn_id": "foreign_conn", "uri": "http://foreign.example"}
    )
    return "connections", "foreign_conn", "foreign_conn"


def _variable(owner, make_member, make_dag):
    secrets.set_variable(tenant=owner, actor=ACTOR, key="foreign_var", value="foreign-value")
    return "variables", "foreign_var", "foreign_var"


def _token(owner, make_member, make_dag):
    user = make_member(owner, Role.USER, username="token-owner")
    token, _ = accounts.create_token(tenant=owner, actor=ACTOR, user=user, name="foreign-token")
    return "tokens", str(token.pk), "foreign-token"


def _service_account(owner, make_member, make_dag):
    user = accounts.create_service_account(tenant=owner, actor=ACTOR, name="foreignbot", role=Role.VIEWER)
    return "service-accounts", str(user.pk), "foreignbot"


def _group(owner, make_member, make_dag):
    grants.ensure_group(tenant=owner, name="foreign-group")
    return "groups", "foreign-group", "foreign-group"


def _dag(owner, make_member, make_dag):
    make_dag(owner, "foreign_dag")
    return "grants", "foreign_dag", "foreign_dag"


MAKERS = {
    Membership: _membership,
    Connection: _connection,
    Variable: _variable,
    ApiToken: _token,
    ServiceAccount: _service_account,
    TenantGroup: _group,
    apps.get_model("scheduler", "Dag"): _dag,
}


def test_every_tenant_api_model_is_covered():
    served = set(_viewsets())
    assert served - {AuditEntry} <= set(MAKERS), f"add a maker for {served - set(MAKERS) - {AuditEntry}}"
    for model in MAKERS:
        assert issubclass(model, TenantOwned)


@pytest.mark.parametrize("model", list(MAKERS), ids=lambda m: m.__name__)
def test_other_tenants_rows_are_not_found(model, tenant, other_tenant, api_for, make_member, make_dag):
    segment, lookup, marker = MAKERS[model](other_tenant, make_member, make_dag)
    viewset = next(cls for m, cls in _viewsets().items() if m is model)
    client = api_for(tenant, Role.ADMIN)
    ours = f"/t/{tenant.slug}/api/v1/{segment}/"
    theirs = f"/t/{other_tenant.slug}/api/v1/{segment}/"

    # Their URLs: 404 whatever the method, like a tenant that does not exist.
    assert client.get(theirs).status_code == 404
    assert client.post(theirs, {}, format="json").status_code == 404
    assert client.get(f"{theirs}{lookup}/").status_code == 404
    # Our URLs never show or reach their row.
    if segment == "grants":  # grants are read and set per DAG: their DAG is simply not found
        assert client.get(f"{ours}?dag_id={lookup}").json() == {"detail": f"DAG {lookup!r} does not exist"}
        response = client.post(ours, {"dag_id": lookup, "group": "x", "perms": []}, format="json")
        assert response.status_code == 404
        return
    assert marker not in client.get(ours).content.decode()
    actions = set(viewset.required)
    if "retrieve" in actions or "partial_update" in actions or "destroy" in actions:
        assert client.get(f"{ours}{lookup}/").status_code in {404, 405}
    if "partial_update" in actions:
        assert (
            client.patch(
                f"{ours}{lookup}/", {"role": "viewer", "members": [], "value": "x"}, format="json"
            ).status_code
            == 404
        )
    if "destroy" in actions:
        assert client.delete(f"{ours}{lookup}/").status_code == 404
    assert model.objects.for_tenant(other_tenant).exists()


def test_audit_entries_of_another_tenant_are_invisible(tenant, other_tenant, api_for):
    secrets.set_variable(tenant=other_tenant, actor=ACTOR, key="foreign_var", value="v")
    client = api_for(tenant, Role.ADMIN)
    body = client.get(f"/t/{tenant.slug}/api/v1/audit/").content.decode()
    assert "foreign_var" not in body and "globex" not in body
    assert client.get(f"/t/{other_tenant.slug}/api/v1/audit/").status_code == 404


def test_ui_pages_of_another_tenant_are_not_found(tenant, other_tenant, browser_for):
    secrets.set_variable(tenant=other_tenant, actor=ACTOR, key="foreign_var", value="v")
    browser = browser_for(tenant, Role.ADMIN)
    for page in ("connections/", "variables/", "tokens/"):
        assert browser.get(f"/t/{other_tenant.slug}/{page}").status_code == 404
        assert b"foreign_var" not in browser.get(f"/t/{tenant.slug}/{page}").content
    response = browser.post(f"/t/{tenant.slug}/variables/", {"key": "foreign_var", "op": "delete"})
    assert response.status_code == 302
    assert Variable.objects.for_tenant(other_tenant).filter(key="foreign_var").exists()


def test_secret_reads_are_scoped(tenant, other_tenant):
    secrets.set_variable(tenant=other_tenant, actor=ACTOR, key="foreign_var", value="v")
    secrets.set_connection(tenant=other_tenant, actor=ACTOR, fields={"conn_id": "c", "uri": "http://h"})
    assert secrets.get_variable(tenant=tenant, key="foreign_var") is None
    assert secrets.get_connection(tenant=tenant, conn_id="c") is None
