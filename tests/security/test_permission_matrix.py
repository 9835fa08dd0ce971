"""The permission matrix, enforced everywhere: every MIN_ROLE action × every role, through each API
endpoint, UI page and command that performs it, for a session user and for a token capped at the role."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from scheduler import services as engine
from scheduler.models import DagRun, TaskInstance
from tenants.models import Membership, Tenant
from tenants.roles import MIN_ROLE, Role, can
from tests.api.helpers import etl_dag
from tests.factories import make_dag_version, make_run
from tests.scheduler.engine import START
from tradewind.accounts import services as accounts
from tradewind.accounts.actors import Actor
from tradewind.secrets import services as secrets
from workers.logs import get_log_store

# Actions without an endpoint (none left): they would be checked through can(), the one function every view
# calls.
NO_ENDPOINT_YET: set[str] = set()


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


def probe_upload(path: Callable[[Ctx], str]):
    """POST a small DAG repository (zip) as the raw request body."""

    def run(ctx: Ctx, client: APIClient, browser: Client | None) -> bool:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(
                "matrix.py", "from tradewind.sdk import DAG\nDAG('matrix_upload', schedule=None)\n"
            )
        return _ok(
            client.generic("POST", path(ctx), buffer.getvalue(), content_type="application/zip").status_code
        )

    run.kind = "api"
    return run


def _target_member(ctx: Ctx) -> int:
    return Membership.objects.get(user=ctx.member(ctx.tenant, Role.VIEWER)).pk


RUN = "dags/etl/dagRuns/r1"


def _world(ctx: Ctx) -> str:
    """The DAG "etl" with runs r1 and r2, whose first task of r1 ran a try with a log (made once per test)."""
    if not DagRun.objects.for_tenant(ctx.tenant).filter(run_id="r1").exists():
        version = make_dag_version(ctx.tenant, etl_dag())
        run = make_run(ctx.tenant, version, logical_date=START, run_id="r1")
        make_run(ctx.tenant, version, logical_date=None, run_id="r2")
        (queued,) = engine.queue_task_instances(
            [ti for ti in engine.schedule_run(run) if ti.task_id == "extract"]
        )
        ti = TaskInstance.objects.select_related("dag_run__dag").get(pk=queued.pk)
        with get_log_store().writer(ti, ti.try_number) as out:
            out.line("hello from the matrix")
        engine.ensure_default_pool(ctx.tenant)
    return "etl"


def world(path: str) -> Callable[[Ctx], str]:
    """The URL of `path` in the tenant's API, once the DAG world it reads or changes exists."""

    def url(ctx: Ctx) -> str:
        _world(ctx)
        return api(ctx, path)

    return url


PROBES: dict[str, list] = {
    "tenant.view": [probe_page("get", ""), probe_api("get", lambda c: api(c, "tenant/"))],
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
    "dag.view": [
        probe_api("get", world("dags/")),
        probe_api("get", world("dags/etl")),
        probe_api("get", world("dags/etl/tasks")),
        probe_api("get", world("dags/etl/dagVersions/1")),
        probe_api("get", world("assets/")),
        probe_api("get", world("assets/events/")),
    ],
    "dag.edit": [probe_api("patch", world("dags/etl"), lambda c: {"is_paused": True})],
    "run.view": [
        probe_api("get", world("dags/~/dagRuns")),
        probe_api("get", world(RUN)),
        probe_api("get", world(f"{RUN}/taskInstances")),
        probe_api("get", world(f"{RUN}/taskInstances/extract/tries")),
        probe_api("get", world(f"{RUN}/taskInstances/extract/xcomEntries")),
    ],
    "run.trigger": [probe_api("post", world("dags/etl/dagRuns"), lambda c: {"conf": {"rows": 2}})],
    "run.clear": [
        probe_api("post", world(f"{RUN}/clear"), lambda c: {"dry_run": False}),
        probe_api(
            "post",
            world("dags/etl/clearTaskInstances"),
            lambda c: {"dag_run_id": "r1", "only_failed": False, "dry_run": False},
        ),
    ],
    "run.mark": [
        probe_api("patch", world(f"{RUN}/taskInstances/extract"), lambda c: {"new_state": "success"}),
        probe_api("patch", world(RUN), lambda c: {"state": "failed"}),
    ],
    "run.delete": [probe_api("delete", world("dags/etl/dagRuns/r2"))],
    "log.view": [probe_api("get", world(f"{RUN}/taskInstances/extract/logs/1"))],
    "bundle.view": [
        probe_api("get", world("bundles/")),
        probe_api("get", world("bundles/default/versions/")),
        probe_api("get", world("importErrors/")),
    ],
    "bundle.upload": [
        probe_upload(world("bundles/matrix/versions/")),
        probe_api("post", world("bundles/default/versions/1/activate/")),
    ],
    "tenant.manage": [probe_api("patch", lambda c: api(c, "tenant/"), lambda c: {"name": "Renamed"})],
    "pool.view": [probe_api("get", world("pools/")), probe_api("get", world("pools/default_pool"))],
    "pool.edit": [
        probe_api("post", world("pools/"), lambda c: {"name": "matrix", "slots": 2}),
        probe_api("patch", world("pools/default_pool"), lambda c: {"slots": 64}),
        probe_api("delete", world("pools/matrix")),
    ],
}


def test_every_action_is_classified():
    assert set(MIN_ROLE) == set(PROBES) | NO_ENDPOINT_YET
    assert not set(PROBES) & NO_ENDPOINT_YET


@pytest.fixture
def stores(settings) -> Iterator[Path]:
    """Bundles and logs in a fresh directory the sandbox (another uid when we are root) can reach."""
    root = Path(tempfile.mkdtemp(prefix="tw-matrix-"))
    os.chmod(root, 0o755)
    settings.BUNDLE_ROOT = root / "bundles"
    settings.LOG_ROOT = root / "logs"
    try:
        yield root
    finally:
        for directory, _dirs, _files in os.walk(root):
            os.chmod(directory, 0o755)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def seeded(tenant, make_member, stores):
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
