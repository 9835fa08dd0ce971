"""The `dags` run-control subcommands and `pools`, through call_command, including their error paths and
--as (the permission matrix and per-DAG grants apply to the member named)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from scheduler import loop, services
from scheduler.models import Backfill, DagRun, Pool
from tenants.models import Membership
from tenants.roles import Role
from tests.factories import make_dag_version, make_run
from tests.runcontrol.helpers import ACTOR, at, chain_dag
from tests.scheduler.engine import drive, states_of
from tradewind.accounts.actors import Actor
from tradewind.accounts.grants import set_grant, set_grants_only
from tradewind.audit.models import AuditEntry

pytestmark = pytest.mark.django_db


def run_command(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def dags(*args: str) -> str:
    return run_command("dags", *args)


@pytest.fixture
def chain(tenant):
    return make_dag_version(tenant, chain_dag("chain"))


@pytest.fixture
def daily(tenant):
    version = make_dag_version(tenant, chain_dag("daily", schedule="@daily", catchup=False))
    loop.refresh_next_dagrun(version.dag, version.serialized)
    return version


# --- errors common to every tenant subcommand ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["list-runs", "chain"],
        ["trigger", "chain"],
        ["pause", "chain"],
        ["clear", "chain", "--run-id", "x", "--yes"],
        ["backfill", "chain", "--start", "2024-01-01", "--end", "2024-01-02"],
        ["backfill-cancel", "chain"],
        ["versions"],
    ],
)
def test_an_unknown_tenant_is_a_clear_error(chain, args) -> None:
    with pytest.raises(CommandError, match="no tenant with slug 'nope'"):
        dags(*args[:1], "--tenant", "nope", *args[1:])


@pytest.mark.parametrize("sub", ["list-runs", "trigger", "pause", "unpause", "backfill-pause"])
def test_an_unknown_dag_or_another_tenants_dag_is_not_found(tenant, other_tenant, chain, sub) -> None:
    with pytest.raises(CommandError, match="tenant 'acme' has no DAG 'ghost'"):
        dags(sub, "--tenant", "acme", "ghost")
    with pytest.raises(CommandError, match="tenant 'globex' has no DAG 'chain'"):
        dags(sub, "--tenant", "globex", "chain")


def test_as_applies_the_role_matrix_and_per_dag_grants(tenant, chain, make_member) -> None:
    viewer = make_member(tenant, Role.VIEWER, username="vera")
    user = make_member(tenant, Role.USER, username="uma")
    with pytest.raises(CommandError, match="'vera' .*may not do 'run.trigger'"):
        dags("trigger", "--tenant", "acme", "chain", "--as", "vera")
    with pytest.raises(CommandError, match="not a member"):
        dags("trigger", "--tenant", "acme", "chain", "--as", "nobody")
    assert "chain" in dags("list", "--tenant", "acme", "--as", viewer.username)
    dags("trigger", "--tenant", "acme", "chain", "--as", "uma")
    entry = AuditEntry.objects.filter(tenant_id=tenant.pk, action="run.triggered").get()
    assert entry.actor_user_id == user.pk
    # Limited to granted DAGs: an ungranted DAG is not there for them; a view grant lets them see, not act.
    membership = Membership.objects.get(tenant=tenant, user=user)
    set_grants_only(tenant=tenant, actor=ACTOR, membership=membership, grants_only=True)
    assert "chain" not in dags("list", "--tenant", "acme", "--as", "uma")
    with pytest.raises(CommandError, match="has no DAG 'chain'"):
        dags("trigger", "--tenant", "acme", "chain", "--as", "uma")
    set_grant(tenant=tenant, actor=ACTOR, dag=chain.dag, perms=["view_dag"], user=user)
    with pytest.raises(CommandError, match="may not do 'run.trigger' on DAG 'chain'"):
        dags("trigger", "--tenant", "acme", "chain", "--as", "uma")
    set_grant(tenant=tenant, actor=ACTOR, dag=chain.dag, perms=["view_dag", "trigger_dag"], user=user)
    assert "Created run" in dags("trigger", "--tenant", "acme", "chain", "--as", "uma")


# --- list, list-runs, pause ------------------------------------------------------------------------------


def test_list_shows_the_tenants_dags(tenant, other_tenant, chain, daily) -> None:
    make_dag_version(other_tenant, chain_dag("theirs"))
    services.set_paused(tenant=tenant, actor=ACTOR, dag=daily.dag, is_paused=True)
    out = dags("list", "--tenant", "acme")
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(lines) == {"chain", "daily"}
    assert "paused" in lines["daily"] and "@daily" in lines["daily"] and "active" in lines["chain"]
    assert "theirs" not in out and "theirs" in dags("list", "--tenant", "globex")


def test_list_runs(tenant, chain) -> None:
    assert "has no runs" in dags("list-runs", "--tenant", "acme", "chain")
    first = make_run(tenant, chain, logical_date=at(1), run_id="first")
    drive(first)
    make_run(tenant, chain, run_id="second")
    out = dags("list-runs", "--tenant", "acme", "chain")
    assert out.index("second") < out.index("first") and "success" in out and "queued" in out
    only = dags("list-runs", "--tenant", "acme", "chain", "--state", "success")
    assert "first" in only and "second" not in only


def test_pause_and_unpause(tenant, daily) -> None:
    assert "is paused" in dags("pause", "--tenant", "acme", "daily")
    daily.dag.refresh_from_db()
    assert daily.dag.is_paused
    assert "is unpaused" in dags("unpause", "--tenant", "acme", "daily")
    daily.dag.refresh_from_db()
    assert not daily.dag.is_paused
    actions = AuditEntry.objects.filter(tenant_id=tenant.pk, action__startswith="dag.").values_list("action")
    assert [a for (a,) in actions.order_by("seq")] == ["dag.paused", "dag.unpaused"]


# --- trigger ----------------------------------------------------------------------------------------------


def test_trigger_with_conf_logical_date_and_run_id(tenant, chain) -> None:
    out = dags(
        "trigger",
        "--tenant",
        "acme",
        "chain",
        "--conf",
        '{"a": 1}',
        "--logical-date",
        "2024-02-01",
        "--run-id",
        "mine",
    )
    assert "Created run mine of DAG chain" in out
    run = DagRun.objects.get(run_id="mine")
    assert run.conf == {"a": 1} and run.logical_date == at(1, month=2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--conf", "{not json"], "--conf is not valid JSON"),
        (["--conf", "[1]"], "--conf must be a JSON object"),
        (["--logical-date", "yesterday"], "--logical-date"),
        (["--run-id", "a b"], "invalid run_id"),
    ],
)
def test_trigger_input_errors(chain, args, message) -> None:
    with pytest.raises(CommandError, match=message):
        dags("trigger", "--tenant", "acme", "chain", *args)
    assert not DagRun.objects.exists()


def test_trigger_wait_times_out_with_a_hint_when_no_scheduler_runs(chain) -> None:
    with pytest.raises(
        CommandError, match="timed out after 0.6 s.*still queued.*manage.py scheduler"
    ) as caught:
        dags("trigger", "--tenant", "acme", "chain", "--wait", "--timeout", "0.6")
    assert caught.value.returncode == 1


# --- clear ------------------------------------------------------------------------------------------------


def failed_run(tenant, chain):
    run = make_run(tenant, chain, run_id="r1")
    drive(run, {"b": {"state": "failed"}})
    return run


def test_clear_lists_then_clears_with_yes(tenant, chain) -> None:
    run = failed_run(tenant, chain)
    out = dags(
        "clear", "--tenant", "acme", "chain", "--run-id", "r1", "--task-regex", "^b$", "--downstream", "--yes"
    )
    assert "to clear (3)" in out and "  b  failed" in out and "Cleared 3 task instances" in out
    assert "run r1 is queued" in out
    assert states_of(run) == {"a": "success", "b": "none", "c": "none", "d": "none"}


def test_clear_only_failed_and_upstream(tenant, chain) -> None:
    run = failed_run(tenant, chain)
    dags("clear", "--tenant", "acme", "chain", "-r", "r1", "-t", "c", "-u", "-f", "-y")
    assert states_of(run) == {"a": "success", "b": "none", "c": "none", "d": "upstream_failed"}
    assert "Nothing to clear." in dags(
        "clear", "--tenant", "acme", "chain", "-r", "r1", "-t", "^a$", "-f", "-y"
    )


def test_clear_asks_for_confirmation(tenant, chain) -> None:
    run = failed_run(tenant, chain)
    with pytest.raises(CommandError, match="add --yes"):
        dags("clear", "--tenant", "acme", "chain", "--run-id", "r1")
    assert states_of(run)["b"] == "failed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run-id", "nope"], "DAG 'chain' has no run 'nope'"),
        (["--run-id", "r1", "--task-regex", "zzz"], "no task of DAG chain matches"),
        (["--run-id", "r1", "--task-regex", "("], "not a valid regular expression"),
    ],
)
def test_clear_errors(tenant, chain, args, message) -> None:
    failed_run(tenant, chain)
    with pytest.raises(CommandError, match=message):
        dags("clear", "--tenant", "acme", "chain", *args, "--yes")


# --- backfill -------------------------------------------------------------------------------------------


def test_backfill_create_list_pause_unpause_cancel(tenant, daily) -> None:
    out = dags(
        "backfill",
        "--tenant",
        "acme",
        "daily",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-03",
        "--max-active-runs",
        "1",
        "--reprocess",
        "failed",
        "--reverse",
    )
    backfill = Backfill.objects.get()
    assert f"Created backfill {backfill.pk} of DAG daily: 3 runs" in out
    assert (backfill.max_active_runs, backfill.reprocess_behavior, backfill.reverse) == (1, "failed", True)
    services.create_backfill_runs(tenant)
    listing = dags("backfill-list", "--tenant", "acme")
    assert "running" in listing and "1/3" in listing
    assert "is paused" in dags("backfill-pause", "--tenant", "acme", "daily")
    assert "paused" in dags("backfill-list", "--tenant", "acme", "daily")
    assert "is unpaused" in dags("backfill-unpause", "--tenant", "acme", "daily")
    assert "is cancelled" in dags("backfill-cancel", "--tenant", "acme", "daily")
    assert "completed" in dags("backfill-list", "--tenant", "acme")
    with pytest.raises(CommandError, match="no backfill that is still running"):
        dags("backfill-cancel", "--tenant", "acme", "daily")


def test_backfill_dry_run_shows_what_it_would_do(tenant, daily) -> None:
    drive(make_run(tenant, daily, logical_date=at(2), data_interval=(at(2), at(2))))
    out = dags(
        "backfill", "--tenant", "acme", "daily", "--start", "2024-01-01", "--end", "2024-01-03", "--dry-run"
    )
    assert "3 dates" in out
    assert f"{at(1).isoformat()}  create" in out and f"{at(2).isoformat()}  skip: already exists" in out
    assert not Backfill.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["daily", "--start", "2024-01-05", "--end", "2024-01-01"], "must not be after"),
        (["daily", "--start", "soon", "--end", "2024-01-01"], "--start"),
        (["chain", "--start", "2024-01-01", "--end", "2024-01-02"], "no time-based schedule"),
    ],
)
def test_backfill_errors(daily, chain, args, message) -> None:
    with pytest.raises(CommandError, match=message):
        dags("backfill", "--tenant", "acme", *args)


# --- versions, rollback ---------------------------------------------------------------------------------


def test_versions_and_rollback_errors(tenant, chain) -> None:
    out = dags("versions", "--tenant", "acme")
    assert "default" in out and "active" in out
    with pytest.raises(CommandError, match="no bundle 'other'"):
        dags("versions", "--tenant", "acme", "--bundle", "other")
    with pytest.raises(CommandError, match="no bundle 'other'"):
        dags("rollback", "--tenant", "acme", "--bundle", "other", "--to", "1")
    with pytest.raises(CommandError, match="already the active version"):
        dags("rollback", "--tenant", "acme", "--to", "1")
    with pytest.raises(CommandError, match="has no version 9"):
        dags("rollback", "--tenant", "acme", "--to", "9")


def test_rollback_needs_an_op(tenant, chain, make_member) -> None:
    make_member(tenant, Role.USER, username="uma")
    with pytest.raises(CommandError, match="may not do 'bundle.upload'"):
        dags("rollback", "--tenant", "acme", "--to", "1", "--as", "uma")


# --- pools ----------------------------------------------------------------------------------------------


def test_pools_commands(tenant, make_member) -> None:
    out = run_command("pools", "list", "--tenant", "acme")
    assert "default_pool" in out and "128" in out
    assert "Pool db set: 3 slots." in run_command(
        "pools", "set", "--tenant", "acme", "db", "3", "the database"
    )
    assert "unlimited" in run_command("pools", "set", "--tenant", "acme", "big", "-1", "--include-deferred")
    out = run_command("pools", "list", "--tenant", "acme")
    assert "the database" in out and "unlimited" in out
    assert "Pool db deleted." in run_command("pools", "delete", "--tenant", "acme", "db")
    assert not Pool.objects.filter(name="db").exists()
    with pytest.raises(CommandError, match="default_pool cannot be deleted"):
        run_command("pools", "delete", "--tenant", "acme", "default_pool")
    with pytest.raises(CommandError, match="no pool 'ghost'"):
        run_command("pools", "delete", "--tenant", "acme", "ghost")
    with pytest.raises(CommandError, match="no tenant"):
        run_command("pools", "list", "--tenant", "nope")
    with pytest.raises(CommandError, match="slots must be"):
        run_command("pools", "set", "--tenant", "acme", "p", "-5")
    make_member(tenant, Role.USER, username="uma")
    with pytest.raises(CommandError, match="may not do 'pool.edit'"):
        run_command("pools", "set", "--tenant", "acme", "p", "1", "--as", "uma")
    assert "default_pool" in run_command("pools", "list", "--tenant", "acme", "--as", "uma")
    assert (
        AuditEntry.objects.filter(tenant_id=tenant.pk, action="pool.changed", actor_kind="system").count()
        == 2
    )


def test_the_system_acts_without_as(tenant, chain) -> None:
    dags("trigger", "--tenant", "acme", "chain")
    entry = AuditEntry.objects.filter(tenant_id=tenant.pk, action="run.triggered").get()
    assert entry.actor_kind == "system" and entry.actor_user_id is None
    assert Actor.system("cli").label == entry.actor_label
