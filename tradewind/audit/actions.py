"""Every action the audit log knows: one enum, so callers never pass bare strings."""

from __future__ import annotations

from django.db import models


class AuditAction(models.TextChoices):
    """What happened; the value is what the log stores and exports filter on."""

    # Runs and tasks
    RUN_TRIGGERED = "run.triggered"
    RUN_CREATED = "run.created"
    RUN_FINISHED = "run.finished"
    RUN_CLEARED = "run.cleared"
    RUN_MARKED = "run.marked"
    RUN_DELETED = "run.deleted"
    TASK_FAILED = "task.failed"
    TASK_CLEARED = "task.cleared"
    TASK_MARKED = "task.marked"
    BACKFILL_CREATED = "backfill.created"
    BACKFILL_PAUSED = "backfill.paused"
    BACKFILL_UNPAUSED = "backfill.unpaused"
    BACKFILL_CANCELLED = "backfill.cancelled"
    BACKFILL_COMPLETED = "backfill.completed"
    # DAGs and their repositories
    DAG_PAUSED = "dag.paused"
    DAG_UNPAUSED = "dag.unpaused"
    DAG_EDITED = "dag.edited"
    BUNDLE_UPLOADED = "bundle.uploaded"
    BUNDLE_ACTIVATED = "bundle.activated"
    BUNDLE_ROLLED_BACK = "bundle.rolled_back"
    POOL_CHANGED = "pool.changed"
    POOL_DELETED = "pool.deleted"
    # Tenants, members, grants
    TENANT_CREATED = "tenant.created"
    TENANT_CHANGED = "tenant.changed"
    MEMBER_ADDED = "member.added"
    MEMBER_ROLE_CHANGED = "member.role_changed"
    MEMBER_REMOVED = "member.removed"
    GRANT_CHANGED = "grant.changed"
    GROUP_CHANGED = "group.changed"
    ADMIN_CHANGE = "admin.change"  # a platform superuser's change in Django's admin
    # Secrets and keys
    SECRET_READ = "secret.read"
    VARIABLE_SET = "variable.set"
    VARIABLE_DELETED = "variable.deleted"
    CONNECTION_CHANGED = "connection.changed"
    CONNECTION_DELETED = "connection.deleted"
    SECRETS_IMPORTED = "secrets.imported"
    SECRETS_EXPORTED = "secrets.exported"
    KEY_ROTATED = "key.rotated"
    # Authentication
    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"
    LOGIN_LOCKED_OUT = "login.locked_out"
    LOGOUT = "logout"
    TOKEN_CREATED = "token.created"
    TOKEN_USED = "token.used"
    TOKEN_REVOKED = "token.revoked"
    # The log itself
    AUDIT_EXPORTED = "audit.exported"
    AUDIT_ARCHIVED = "audit.archived"
