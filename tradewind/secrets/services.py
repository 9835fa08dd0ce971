"""Connections and variables: every read that decrypts and every write goes through these functions.

Reads used by tasks (`get_variable`, `get_connection`) look in the tenant's Vault path first (when Vault is
configured), then in the database, and record a `secret.read` audit entry when they find something.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.http import HttpRequest

from tradewind.accounts.actors import Actor
from tradewind.audit.actions import AuditAction
from tradewind.audit.services import record
from tradewind.errors import Conflict, Invalid, NotFound
from tradewind.sdk.masking import is_sensitive_key
from tradewind.secrets import keys, vault
from tradewind.secrets.formats import connection_from_any
from tradewind.secrets.masking import MASK
from tradewind.secrets.models import Connection, Variable

if TYPE_CHECKING:
    from tenants.models import Tenant

CONN_ID_RE = re.compile(r"^[\w.\-]{1,250}$")
TASK_READER = Actor.system("task")


# Reads for tasks (the runner's parent): decrypted values.


def get_variable(*, tenant: Tenant, key: str, actor: Actor | None = None) -> str | None:
    """The variable's value (Vault first when configured, then the database), or None when it does not
    exist. A found value is audited as read by `actor` (default: a task). Vault down: SecretsBackendUnavailable."""
    source = "vault"
    value = vault.read_variable(tenant, key) if vault.vault_enabled() else None
    if value is None:
        source = "database"
        row = Variable.objects.for_tenant(tenant).select_related("data_key").filter(key=key).first()
        value = None if row is None else (keys.decrypt(row.data_key, row.encrypted_value) or "")
    if value is not None:
        record(
            tenant=tenant,
            actor=actor or TASK_READER,
            action=AuditAction.SECRET_READ,
            detail={"kind": "variable", "name": key, "source": source},
        )
    return value


def get_connection(*, tenant: Tenant, conn_id: str, actor: Actor | None = None) -> dict[str, Any] | None:
    """The connection as Airflow's fields (conn_id, conn_type, description, host, schema, login, password,
    port, extra as a JSON string), Vault first then the database; None when it does not exist. Audited
    like `get_variable`."""
    source = "vault"
    fields = vault.read_connection(tenant, conn_id) if vault.vault_enabled() else None
    if fields is None:
        source = "database"
        row = Connection.objects.for_tenant(tenant).select_related("data_key").filter(conn_id=conn_id).first()
        fields = None if row is None else connection_fields(row)
    if fields is not None:
        record(
            tenant=tenant,
            actor=actor or TASK_READER,
            action=AuditAction.SECRET_READ,
            detail={"kind": "connection", "name": conn_id, "source": source},
        )
    return fields


def variable_value(variable: Variable) -> str:
    """A stored variable's clear value (for export and for the task reads above)."""
    return keys.decrypt(variable.data_key, variable.encrypted_value) or ""


def connection_fields(connection: Connection) -> dict[str, Any]:
    """A stored connection as Airflow's field dict, password and extra decrypted."""
    return {
        "conn_id": connection.conn_id,
        "conn_type": connection.conn_type,
        "description": connection.description or None,
        "host": connection.host or None,
        "schema": connection.schema or None,
        "login": connection.login or None,
        "password": keys.decrypt(connection.data_key, connection.encrypted_password),
        "port": connection.port,
        "extra": keys.decrypt(connection.data_key, connection.encrypted_extra),
    }


# What responses, pages and audit entries may show.


def masked_variable_value(key: str, value: str) -> str:
    """The value as UI and API show it: `***` when the key looks sensitive (Airflow's rule)."""
    return MASK if is_sensitive_key(key) else value


def public_connection(connection: Connection) -> dict[str, Any]:
    """A connection without its secrets: the password and every extra value are `***`."""
    extra = keys.decrypt(connection.data_key, connection.encrypted_extra)
    try:
        decoded = json.loads(extra) if extra else None
    except ValueError:
        decoded = MASK
    if isinstance(decoded, dict):
        decoded = dict.fromkeys(decoded, MASK)
    elif decoded is not None:
        decoded = MASK
    return {
        "conn_id": connection.conn_id,
        "conn_type": connection.conn_type,
        "description": connection.description,
        "host": connection.host,
        "schema": connection.schema,
        "login": connection.login,
        "port": connection.port,
        "password": MASK if connection.encrypted_password else None,
        "extra": decoded,
    }


def _audit_connection(connection: Connection | None) -> dict[str, Any] | None:
    if connection is None:
        return None
    fields = public_connection(connection)
    fields["extra"] = MASK if connection.encrypted_extra else None
    return fields


# Writes.


@transaction.atomic
def set_variable(
    *,
    tenant: Tenant,
    actor: Actor,
    key: str,
    value: str,
    description: str | None = "",
    request: HttpRequest | None = None,
) -> Variable:
    """Create or overwrite a variable (encrypted with the tenant's active data key); audited without its
    value. `description=None` keeps an existing description."""
    key = (key or "").strip()
    if not key or len(key) > 250 or "/" in key:
        raise Invalid("a variable key is 1-250 characters without '/'")
    if not isinstance(value, str):
        raise Invalid("a variable value is a string (store JSON as its text)")
    data_key = keys.active_data_key(tenant)
    existing = Variable.objects.for_tenant(tenant).select_for_update().filter(key=key).first()
    variable = existing or Variable(tenant=tenant, key=key)
    before = {"key": key, "description": existing.description, "value": MASK} if existing else None
    variable.encrypted_value = keys.encrypt(data_key, value)
    variable.data_key = data_key
    if description is not None or existing is None:
        variable.description = description or ""
    variable.save()
    record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.VARIABLE_SET,
        obj=variable,
        before=before,
        after={"key": key, "description": variable.description, "value": MASK},
        request=request,
    )
    return variable


@transaction.atomic
def delete_variable(*, tenant: Tenant, actor: Actor, key: str, request: HttpRequest | None = None) -> None:
    """Delete a variable of the tenant (NotFound when there is none)."""
    variable = Variable.objects.for_tenant(tenant).filter(key=key).first()
    if variable is None:
        raise NotFound(f"variable {key!r} does not exist")
    record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.VARIABLE_DELETED,
        obj=variable,
        before={"key": key, "description": variable.description, "value": MASK},
        request=request,
    )
    variable.delete()


@transaction.atomic
def set_connection(
    *,
    tenant: Tenant,
    actor: Actor,
    fields: dict[str, Any],
    create_only: bool = False,
    request: HttpRequest | None = None,
) -> Connection:
    """Create or replace a connection from Airflow's fields (or {"conn_id", "uri"}); password and extra are
    encrypted. `create_only` refuses an existing conn_id (Conflict). Audited with secrets masked."""
    conn_id = str(fields.get("conn_id") or "").strip()
    if not CONN_ID_RE.match(conn_id):
        raise Invalid("a conn_id is 1-250 letters, digits, '_', '.' or '-'")
    fields = connection_from_any(conn_id, {k: v for k, v in fields.items() if k != "conn_id"})
    if fields["extra"]:
        try:
            json.loads(fields["extra"])
        except ValueError:
            raise Invalid(f"connection {conn_id!r}: extra is not valid JSON") from None
    data_key = keys.active_data_key(tenant)
    existing = (
        Connection.objects.for_tenant(tenant)
        .select_for_update()
        .select_related("data_key")
        .filter(conn_id=conn_id)
        .first()
    )
    if existing is not None and create_only:
        raise Conflict(f"connection {conn_id!r} already exists")
    before = _audit_connection(existing)
    connection = existing or Connection(tenant=tenant, conn_id=conn_id)
    connection.conn_type = fields["conn_type"]
    connection.description = fields["description"] or ""
    connection.host = fields["host"] or ""
    connection.schema = fields["schema"] or ""
    connection.login = fields["login"] or ""
    connection.port = fields["port"]
    connection.encrypted_password = keys.encrypt(data_key, fields["password"])
    connection.encrypted_extra = keys.encrypt(data_key, fields["extra"])
    connection.data_key = data_key
    connection.save()
    record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.CONNECTION_CHANGED,
        obj=connection,
        before=before,
        after=_audit_connection(connection),
        request=request,
    )
    return connection


@transaction.atomic
def delete_connection(
    *, tenant: Tenant, actor: Actor, conn_id: str, request: HttpRequest | None = None
) -> None:
    """Delete a connection of the tenant (NotFound when there is none)."""
    connection = (
        Connection.objects.for_tenant(tenant).select_related("data_key").filter(conn_id=conn_id).first()
    )
    if connection is None:
        raise NotFound(f"connection {conn_id!r} does not exist")
    record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.CONNECTION_DELETED,
        obj=connection,
        before=_audit_connection(connection),
        request=request,
    )
    connection.delete()


# Bulk import and export (Airflow's file formats; see tradewind.secrets.formats).


@transaction.atomic
def import_variables(
    *, tenant: Tenant, actor: Actor, items: list[tuple[str, str, str | None]], on_existing: str = "overwrite"
) -> dict[str, int]:
    """Import (key, value, description) items; `on_existing` is Airflow's overwrite | fail | skip. All or
    nothing: "fail" on an existing key imports none. Returns {"created", "updated", "skipped"}."""
    if on_existing not in {"overwrite", "fail", "skip"}:
        raise Invalid("on_existing is overwrite, fail or skip")
    existing = set(Variable.objects.for_tenant(tenant).values_list("key", flat=True))
    counts = {"created": 0, "updated": 0, "skipped": 0}
    for key, value, description in items:
        if key in existing:
            if on_existing == "fail":
                raise Conflict(f"variable {key!r} already exists")
            if on_existing == "skip":
                counts["skipped"] += 1
                continue
        set_variable(tenant=tenant, actor=actor, key=key, value=value, description=description)
        counts["updated" if key in existing else "created"] += 1
    record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.SECRETS_IMPORTED,
        detail={"kind": "variables", **counts},
    )
    return counts


@transaction.atomic
def import_connections(
    *, tenant: Tenant, actor: Actor, connections: list[dict[str, Any]], overwrite: bool = False
) -> dict[str, int]:
    """Import connections (Airflow's field dicts); an existing conn_id is skipped unless `overwrite`.
    Returns {"created", "updated", "skipped"}."""
    existing = set(Connection.objects.for_tenant(tenant).values_list("conn_id", flat=True))
    counts = {"created": 0, "updated": 0, "skipped": 0}
    for fields in connections:
        if fields["conn_id"] in existing and not overwrite:
            counts["skipped"] += 1
            continue
        set_connection(tenant=tenant, actor=actor, fields=fields)
        counts["updated" if fields["conn_id"] in existing else "created"] += 1
    record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.SECRETS_IMPORTED,
        detail={"kind": "connections", **counts},
    )
    return counts


def export_variables(*, tenant: Tenant, actor: Actor) -> list[tuple[str, str]]:
    """Every variable of the tenant's database as (key, clear value); audited as an export."""
    rows = Variable.objects.for_tenant(tenant).select_related("data_key").order_by("key")
    result = [(row.key, variable_value(row)) for row in rows]
    record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.SECRETS_EXPORTED,
        detail={"kind": "variables", "count": len(result)},
    )
    return result


def export_connections(*, tenant: Tenant, actor: Actor) -> list[dict[str, Any]]:
    """Every connection of the tenant's database as Airflow's field dicts, decrypted; audited."""
    rows = Connection.objects.for_tenant(tenant).select_related("data_key").order_by("conn_id")
    result = [connection_fields(row) for row in rows]
    record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.SECRETS_EXPORTED,
        detail={"kind": "connections", "count": len(result)},
    )
    return result
