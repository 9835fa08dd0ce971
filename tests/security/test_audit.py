"""The audit log: hash-chained per tenant, append-only, tamper-evident, exportable, archivable."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from tenants.roles import Role
from tradewind.accounts.actors import Actor
from tradewind.audit import integrity, retention
from tradewind.audit.actions import AuditAction
from tradewind.audit.models import AppendOnlyError, AuditCheckpoint, AuditEntry
from tradewind.audit.services import record

ACTOR = Actor.system("tests")


def fill(tenant, count: int = 5) -> list[AuditEntry]:
    return [
        record(tenant=tenant, actor=ACTOR, action=AuditAction.RUN_CREATED, detail={"n": n})
        for n in range(count)
    ]


def raw(sql: str, params: list | None = None) -> None:
    """What an attacker with database access does: switch the trigger off and change rows directly."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_append_only")
            cursor.execute("ALTER TABLE audit_auditcheckpoint DISABLE TRIGGER audit_checkpoint_append_only")
        cursor.execute(sql, params or [])
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER audit_entry_append_only")
            cursor.execute("ALTER TABLE audit_auditcheckpoint ENABLE TRIGGER audit_checkpoint_append_only")


def verify_output(tenant) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("audit", "verify", "--tenant", tenant.slug, stdout=out, stderr=err)
    except CommandError as error:
        err.write(str(error))
    return out.getvalue(), err.getvalue()


def test_entries_chain_per_tenant_and_verify(tenant, other_tenant):
    ours = fill(tenant, 3)
    theirs = fill(other_tenant, 2)
    # Each tenant's chain starts with its creation (seq 1) and numbers its own entries.
    assert [e.seq for e in ours] == [2, 3, 4] and [e.seq for e in theirs] == [2, 3]
    first = AuditEntry.objects.for_tenant(tenant).get(seq=1)
    assert first.action == "tenant.created" and first.prev_hash == "0" * 64
    assert ours[1].prev_hash == ours[0].hash and ours[0].prev_hash == first.hash
    out, err = verify_output(tenant)
    assert "OK" in out and not err
    assert integrity.verify_chain(other_tenant.pk).ok


def test_entry_records_who_what_and_masks_secrets(tenant, browser_for, make_member):
    user = make_member(tenant, Role.OP)
    entry = record(
        tenant=tenant,
        actor=Actor.for_user(user),
        action=AuditAction.CONNECTION_CHANGED,
        obj=tenant,
        before={"password": "hunter2-secret", "host": "db"},
        after={"extra": {"api_key": "k-123456"}, "host": "db2"},
    )
    entry = AuditEntry.objects.get(pk=entry.pk)
    assert entry.before == {"password": "***", "host": "db"}
    assert entry.after == {"extra": {"api_key": "***"}, "host": "db2"}
    assert (
        entry.actor_kind == "user"
        and entry.actor_user_id == user.pk
        and entry.object_type == "tenants.tenant"
    )


def test_ui_actions_carry_ip_user_agent_and_request_id(tenant, browser_for):
    browser = browser_for(tenant, Role.OP)
    browser.post(
        f"/t/{tenant.slug}/variables/",
        {"key": "region", "value": "eu"},
        HTTP_USER_AGENT="pytest-browser",
        HTTP_X_REQUEST_ID="req-42",
    )
    entry = AuditEntry.objects.for_tenant(tenant).get(action="variable.set")
    assert (entry.ip, entry.user_agent, entry.request_id) == ("127.0.0.1", "pytest-browser", "req-42")
    assert entry.after["value"] == "***"


def test_the_orm_has_no_update_or_delete_path(tenant):
    entry = fill(tenant, 1)[0]
    entry.detail = {"n": 99}
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).delete()


@pytest.mark.postgres
def test_postgres_trigger_rejects_update_and_delete(tenant):
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's; embedded SQLite relies on the ORM guard")
    entry = fill(tenant, 1)[0]
    for sql in (
        "UPDATE audit_auditentry SET action = 'x' WHERE id = %s",
        "DELETE FROM audit_auditentry WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [entry.pk])
    assert AuditEntry.objects.get(pk=entry.pk).action == "run.created"


def test_edited_entry_is_named(tenant):
    entries = fill(tenant)
    raw("UPDATE audit_auditentry SET detail = %s WHERE id = %s", [json.dumps({"n": 42}), entries[2].pk])
    bad = entries[2].seq
    report = integrity.verify_chain(tenant.pk)
    assert (
        not report.ok
        and report.bad_seq == bad
        and f"#{bad} " in report.problem
        and "modified" in report.problem
    )
    out, err = verify_output(tenant)
    assert "TAMPERED" in err and f"entry #{bad} (id {entries[2].pk}" in err


def test_edited_entry_with_recomputed_hash_breaks_the_next_link(tenant):
    entries = fill(tenant)
    from tradewind.audit.services import entry_digest

    victim = AuditEntry.objects.get(pk=entries[1].pk)
    values = integrity.entry_values(victim)
    values["detail"] = {"n": 77}
    raw(
        "UPDATE audit_auditentry SET detail = %s, hash = %s WHERE id = %s",
        [json.dumps({"n": 77}), entry_digest(values), victim.pk],
    )
    report = integrity.verify_chain(tenant.pk)
    assert not report.ok and report.bad_seq == entries[2].seq
    assert f"does not follow entry #{entries[1].seq}" in report.problem


def test_removed_entry_is_named(tenant):
    entries = fill(tenant)
    raw("DELETE FROM audit_auditentry WHERE id = %s", [entries[1].pk])
    report = integrity.verify_chain(tenant.pk)
    assert not report.ok and report.bad_seq == entries[1].seq
    assert f"entry #{entries[1].seq} is missing" in report.problem


def test_removed_last_entries_are_noticed(tenant):
    entries = fill(tenant)
    raw("DELETE FROM audit_auditentry WHERE id >= %s", [entries[3].pk])
    report = integrity.verify_chain(tenant.pk)
    assert not report.ok and f"entries after #{entries[2].seq} were removed" in report.problem


def test_reordered_entries_are_noticed(tenant):
    entries = fill(tenant)
    a, b = entries[1], entries[3]
    # Swap the positions of two rows: everything but the id moves.
    raw("UPDATE audit_auditentry SET seq = -1 WHERE id = %s", [a.pk])
    raw("UPDATE audit_auditentry SET seq = %s WHERE id = %s", [a.seq, b.pk])
    raw("UPDATE audit_auditentry SET seq = %s WHERE id = %s", [b.seq, a.pk])
    report = integrity.verify_chain(tenant.pk)
    assert not report.ok and report.bad_seq == a.seq


def test_reordered_ids_are_noticed(tenant):
    entries = fill(tenant, 3)
    raw("UPDATE audit_auditentry SET id = %s WHERE id = %s", [entries[0].pk + 100000, entries[0].pk])
    report = integrity.verify_chain(tenant.pk)
    assert not report.ok and report.bad_seq == entries[1].seq and "out of order" in report.problem


def test_export_csv_and_jsonl_with_filters(tenant, other_tenant, make_member, tmp_path):
    user = make_member(tenant, Role.OP)
    fill(tenant, 2)
    record(tenant=tenant, actor=Actor.for_user(user), action=AuditAction.VARIABLE_SET, detail={"key": "a"})
    fill(other_tenant, 2)
    out = tmp_path / "audit.csv"
    call_command(
        "audit",
        "export",
        "--tenant",
        tenant.slug,
        "--format",
        "csv",
        "--output",
        str(out),
        "--actor",
        user.username,
        stderr=io.StringIO(),
    )
    rows = list(csv.DictReader(out.open()))
    assert [r["action"] for r in rows] == ["variable.set"] and rows[0]["tenant_slug"] == "acme"
    assert json.loads(rows[0]["detail"]) == {"key": "a"}
    stream = io.StringIO()
    call_command("audit", "export", "--tenant", tenant.slug, "--action", "run.", stdout=stream)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["action"] for line in lines] == ["run.created", "run.created"]
    later = io.StringIO()
    call_command(
        "audit",
        "export",
        "--tenant",
        tenant.slug,
        "--since",
        (timezone.now() + timedelta(minutes=1)).isoformat(),
        stdout=later,
    )
    assert later.getvalue() == ""
    assert AuditEntry.objects.for_tenant(tenant).filter(action="audit.exported").count() == 3


def test_audit_api_lists_and_exports_own_tenant_only(tenant, other_tenant, api_for):
    fill(tenant, 2)
    fill(other_tenant, 3)
    client = api_for(tenant, Role.VIEWER)
    listed = client.get(f"/t/{tenant.slug}/api/v1/audit/?action=run.created").json()
    assert listed["count"] == 2 and {r["tenant_slug"] for r in listed["results"]} == {"acme"}
    exported = client.get(f"/t/{tenant.slug}/api/v1/audit/export/?fmt=csv")
    assert exported.status_code == 200 and exported["Content-Type"] == "text/csv"
    assert "globex" not in exported.content.decode()


def test_archiving_keeps_the_chain_verifiable(tenant, settings, tmp_path):
    settings.TRADEWIND_AUDIT_ARCHIVE_DIR = tmp_path
    fill(tenant, 4)
    result = retention.archive_chain(chain=tenant.pk, before=timezone.now(), actor=ACTOR)
    assert result.archived == 5 and result.path.exists()  # tenant.created and the four
    archived = [json.loads(line) for line in result.path.read_text().splitlines()]
    assert [row["seq"] for row in archived] == [1, 2, 3, 4, 5]
    remaining = list(AuditEntry.objects.for_tenant(tenant).order_by("seq"))
    assert [e.seq for e in remaining] == [6] and remaining[0].action == "audit.archived"
    assert remaining[0].prev_hash == archived[-1]["hash"]
    fill(tenant, 2)
    assert integrity.verify_chain(tenant.pk).ok
    # A forged checkpoint (hiding more removed entries) fails its signature.
    raw("UPDATE audit_auditcheckpoint SET through_seq = 6 WHERE chain = %s", [tenant.pk])
    report = integrity.verify_chain(tenant.pk)
    assert not report.ok and "invalid signature" in report.problem


def test_archive_file_must_match_its_checkpoint(tenant, settings, tmp_path):
    settings.TRADEWIND_AUDIT_ARCHIVE_DIR = tmp_path
    fill(tenant, 3)
    result = retention.archive_chain(chain=tenant.pk, before=timezone.now(), actor=ACTOR)
    result.path.write_text(result.path.read_text().replace("run.created", "run.deleted", 1))
    report = integrity.verify_chain(tenant.pk)
    assert not report.ok and "does not match its checkpoint" in report.problem


def test_archive_command_uses_the_retention_days(tenant, settings, tmp_path, monkeypatch):
    settings.TRADEWIND_AUDIT_ARCHIVE_DIR = tmp_path
    settings.TRADEWIND_AUDIT_RETENTION_DAYS = 30
    long_ago = timezone.now() - timedelta(days=90)
    monkeypatch.setattr("tradewind.audit.services.timezone.now", lambda: long_ago)
    fill(tenant, 2)  # with tenant.created before them: 3 old entries
    monkeypatch.undo()
    fill(tenant, 2)  # recent: kept
    out = io.StringIO()
    call_command("audit", "archive", "--tenant", tenant.slug, stdout=out)
    assert "archived 3 entries" in out.getvalue()
    assert AuditCheckpoint.objects.get(chain=tenant.pk).through_seq == 3
    assert sorted(AuditEntry.objects.for_tenant(tenant).values_list("seq", flat=True)) == [4, 5, 6]
    assert integrity.verify_chain(tenant.pk).ok
    if connection.vendor == "postgresql":  # the trigger still protects what is left
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL tradewind.audit_archiving = 'on'")
            cursor.execute("DELETE FROM audit_auditentry WHERE chain = %s AND seq = 4", [tenant.pk])


def test_deleting_a_tenant_keeps_its_audit_entries(tenant):
    fill(tenant, 2)
    chain = tenant.pk
    tenant.delete()
    assert AuditEntry.objects.filter(chain=chain).count() >= 2
    assert integrity.verify_chain(chain).ok


def test_verify_walks_every_chain(tenant, other_tenant):
    fill(tenant, 2)
    record(tenant=None, actor=ACTOR, action=AuditAction.LOGIN_FAILED, detail={"username": "x"})
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    lines = out.getvalue()
    assert "platform: OK" in lines and "tenant acme: OK" in lines and "tenant globex: OK" in lines
    raw("UPDATE audit_auditentry SET action = 'login.succeeded' WHERE chain = 0")
    with pytest.raises(CommandError, match="platform: entry #1"):
        call_command("audit", "verify", stdout=io.StringIO(), stderr=io.StringIO())
