"""On PostgreSQL, triggers make the audit tables append-only for every client, not only the ORM.

Entries may be deleted only by retention archiving: inside a transaction that set
`tradewind.audit_archiving = 'on'`, and only entries a signed checkpoint already covers.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION tradewind_audit_entry_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('tradewind.audit_archiving', true) = 'on'
       AND EXISTS (SELECT 1 FROM audit_auditcheckpoint c
                   WHERE c.chain = OLD.chain AND c.through_seq >= OLD.seq) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % of audit entry %/% refused', TG_OP, OLD.chain, OLD.seq
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tradewind_audit_checkpoint_guard() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit checkpoints are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_auditentry
    FOR EACH ROW EXECUTE FUNCTION tradewind_audit_entry_guard();
CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON audit_auditcheckpoint
    FOR EACH ROW EXECUTE FUNCTION tradewind_audit_checkpoint_guard();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_auditentry;
DROP TRIGGER IF EXISTS audit_checkpoint_append_only ON audit_auditcheckpoint;
DROP FUNCTION IF EXISTS tradewind_audit_entry_guard();
DROP FUNCTION IF EXISTS tradewind_audit_checkpoint_guard();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:  # no parameters: the SQL holds literal %
            cursor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
