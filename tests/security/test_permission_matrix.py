"""The permission matrix, enforced everywhere: every MIN_ROLE action × every role, through each API
endpoint, UI page and command that performs it, for a session user and for a token capped at the role."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from tenants.models import Membership, Tenant
from tenants.roles import MIN_ROLE, Role, can
from tradewind.accounts import services as accounts
from tradewind.accounts.actors import Actor
from tradewind.secrets import services as secrets

# Actions whose endpoints belong to other parts of the platform that do not exist yet (DAGs, runs,
# logs, bundles, pools through the API/UI; tenant settings are managed by platform superusers in the
# admin). They are checked through can(), the one function every future view must call.
NO_ENDPOINT_YET = {
    "dag.view",
    "dag.edit",
    "run.view",
    "run.trigger",
    "run.clear",
    "run.mark",
    "run.delete",
    "log.view",
    "bundle.view",
    "bundle.upload",
    "pool.view",
    "pool.edit",
    "tenant.manage",
}


@dataclass
class Ctx:
    tenant: Tenant
    member: Callable  # make_member
    dag: Callable  # make_dag
    username: str  # the acting user


def api(ctx: Ctx, path: str) -> str:
    return f"/t/{ctx.tenant.slug}/api/v1/{path}"


def _ok(status: int) -> bool:
    assert status in {200, 201, 204, 302, 403}, status
    return status != 403


def probe_api(method: str, path: Callable[[Ctx], str], body: Callable[[Ctx], dict] | None = None):
    def run(ctx: Ctx, client: APIClient, browser: Client | None) -> bool:
        data = body(ctx) if body else None
        return _ok(getattr(client, method)(path(ctx), data, format="json").status_code)

    run.kind = "api"
    return run


def probe_page(method: str, path: str, body: Callable[[Ctx], dict] | None = None):
    def run(ctx: Ctx, client: APIClient, browser: Client | None) -> bool:
        url = f"/t/{ctx.tenant.slug}/{path}"
        response = browser.get(url) if method == "get" else browser.post(url, body(ctx))
        return _ok(response.status_code)

    run.kind = "page"
    return run


def probe_command(*args: str):
    def run(ctx: Ctx, client: APIClient, browser: Client | None) -> bool:
        try:
            call_command(*args, "--tenant", ctx.tenant.slug, "--as", ctx.username, stdout=io.StringIO())
        except CommandError as error:
            assert "may not" in str(error)
            return False
        return True

    run.kind = "command"
    return run


def _target_member(ctx: Ctx) -> int:
    return Membership.objects.get(user=ctx.member(ctx.tenant, Role.VIEWER)).pk


PROBES: dict[str, list] = {
    "tenant.view": [probe_page("get", "")],
    "member.view": [probe_api("get", lambda c: api(c, "members/")), probe_page("get", "members/")],
    "member.manage": [
        probe_api("patch", lambda c: api(c, f"members/{_target_member(c)}/"), lambda c: {"role": "user"})
    ],
    "grant.manage": [
        probe_api(
            "post",
            lambda c: api(c, "grants/"),
            lambda c: {
                "dag_id": c.dag(c.tenant, "etl").dag_id,
                "username": c.username,
                "perms": ["view_dag"],
            },
        ),
        probe_api("post", lambda c: api(c, "groups/"), lambda c: {"name": "team"}),
    ],
    "token.own": [
        probe_api("post", lambda c: api(c, "tokens/"), lambda c: {"name": "mine"}),
        probe_api("get", lambda c: api(c, "tokens/")),
        probe_page("get", "tokens/"),
    ],
    "token.manage": [
        probe_api(
            "post",
            lambda c: api(c, "tokens/"),
            lambda c: {"name": "theirs", "username": c.member(c.tenant, Role.VIEWER).username},
        ),
        probe_api("get", lambda c: api(c, "service-accounts/")),
    ],
    "connection.view": [
        probe_api("get", lambda c: api(c, "connections/")),
        probe_api("get", lambda c: api(c, "connections/pg/")),
        probe_page("get", "connections/"),
        probe_command("connections", "list"),
    ],
    "connection.edit": [
        probe_api("post", lambda c: api(c, "connections/"), lambda c: {"conn_id": "new", "uri": "http://h"}),
        probe_api("patch", lambda c: api(c, "connections/pg/"), lambda c: {"host": "db2"}),
        probe_page("post", "connections/", lambda c: {"conn_id": "ui", "conn_type": "http"}),
        probe_command("connections", "add", "cli", "--conn-uri", "http://h"),
    ],
    "variable.view": [
        probe_api("get", lambda c: api(c, "variables/")),
        probe_api("get", lambda c: api(c, "variables/region/")),
        probe_page("get", "variables/"),
        probe_command("variables", "list"),
    ],
    "variable.edit": [
        probe_api("post", lambda c: api(c, "variables/"), lambda c: {"key": "new", "value": "1"}),
        probe_api("delete", lambda c: api(c, "variables/region/")),
        probe_page("post", "variables/", lambda c: {"key": "ui", "value": "2"}),
        probe_command("variables", "set", "cli", "3"),
    ],
    "audit.view": [probe_api("get", lambda c: api(c, "audit/"))],
}


def test_every_action_is_classified():
    assert set(MIN_ROLE) == set(PROBES) | NO_ENDPOINT_YET
    assert not set(PROBES) & NO_ENDPOINT_YET


@pytest.fixture
def seeded(tenant, make_member):
    """One connection and one variable for the probes that read or change an existing one."""
    make_member(tenant, Role.ADMIN)  # so a probe may demote or remove without orphaning the tenant
    secrets.set_connection(
        tenant=tenant, actor=Actor.system(), fields={"conn_id": "pg", "uri": "postgres://h/db"}
    )
    secrets.set_variable(tenant=tenant, actor=Actor.system(), key="region", value="eu")
    return tenant


CASES = [(action, role) for action in sorted(MIN_ROLE) for role in Role]


@pytest.mark.parametrize(("action", "role"), CASES, ids=[f"{a}-{r.name.lower()}" for a, r in CASES])
def test_session_user(seeded, make_member, make_dag, action, role):
    user = make_member(seeded, role)
    membership = Membership.objects.get(user=user, tenant=seeded)
    expected = role >= MIN_ROLE[action]
    assert can(membership, action) is expected
    if action in NO_ENDPOINT_YET:
        dag = make_dag(seeded, "matrix")
        assert can(membership, action, dag) is expected
        return
    api_client, browser = APIClient(), Client()
    api_client.force_login(user)
    browser.force_login(user)
    ctx = Ctx(tenant=seeded, member=make_member, dag=make_dag, username=user.username)
    for probe in PROBES[action]:
        assert probe(ctx, api_client, browser) is expected, (probe.kind, action, role)


@pytest.mark.parametrize(("action", "role"), CASES, ids=[f"{a}-{r.name.lower()}" for a, r in CASES])
def test_admin_token_capped_at_role(seeded, make_member, make_dag, action, role):
    """An Admin's token capped at `role` may do exactly what a member with `role` may."""
    admin = make_member(seeded, Role.ADMIN)
    _, raw = accounts.create_token(
        tenant=seeded, actor=Actor.for_user(admin), user=admin, name="t", role_cap=role
    )
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    expected = role >= MIN_ROLE[action]
    ctx = Ctx(tenant=seeded, member=make_member, dag=make_dag, username=admin.username)
    api_probes = [probe for probe in PROBES.get(action, []) if probe.kind == "api"]
    if not api_probes:
        assert action in NO_ENDPOINT_YET or action == "tenant.view"
        if action == "tenant.view":
            assert client.get(api(ctx, "members/")).status_code == 200
        return
    for probe in api_probes:
        assert probe(ctx, client, None) is expected, (action, role)


def test_cannot_read_is_404_cannot_act_is_403(tenant, other_tenant, api_for):
    viewer = api_for(tenant, Role.VIEWER)
    assert (
        viewer.post(
            f"/t/{tenant.slug}/api/v1/variables/", {"key": "k", "value": "v"}, format="json"
        ).status_code
        == 403
    )
    assert viewer.get(f"/t/{other_tenant.slug}/api/v1/variables/").status_code == 404
