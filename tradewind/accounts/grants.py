"""Per-DAG grants: view, trigger and edit rights on one DAG for a member or a tenant group.

Grants narrow a membership whose `grants_only` is set (see tenants.roles.can); they never add to a role.
They live in django-guardian's direct-FK tables (scheduler.DagUserObjectPermission/DagGroupObjectPermission)
and are only ever given to members or groups of the DAG's own tenant. A DAG file's `access_control`
(Airflow's per-role DAG permissions) becomes grants to tenant groups named after those roles.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from tenants.models import Membership
from tenants.roles import DAG_PERMS, Role
from tradewind.accounts.actors import Actor
from tradewind.accounts.models import DagAccessControl, TenantGroup
from tradewind.audit.actions import AuditAction
from tradewind.audit.services import record
from tradewind.errors import Invalid

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

    from scheduler.models import Dag
    from tenants.models import Tenant

log = logging.getLogger(__name__)

GRANT_PERMS = ("view_dag", "trigger_dag", "change_dag")
# Which stored grants satisfy a needed permission: any grant on a DAG lets you see it.
SATISFIED_BY = {
    "view_dag": ("view_dag", "trigger_dag", "change_dag"),
    "trigger_dag": ("trigger_dag",),
    "change_dag": ("change_dag",),
}
# Airflow's access_control actions, per resource, as our grants.
_AIRFLOW_DAG_ACTIONS = {
    "can_read": {"view_dag"},
    "can_dag_read": {"view_dag"},
    "can_edit": {"view_dag", "trigger_dag", "change_dag"},
    "can_dag_edit": {"view_dag", "trigger_dag", "change_dag"},
    "can_delete": {"view_dag", "trigger_dag"},
}
_AIRFLOW_RUN_ACTIONS = {
    "can_read": {"view_dag"},
    "can_create": {"view_dag", "trigger_dag"},
    "can_edit": {"view_dag", "trigger_dag"},
    "can_delete": {"view_dag", "trigger_dag"},
}


def _group_q(membership: Membership, prefix: str = "group__") -> Q:
    """The tenant groups this member is in: added by an admin, or implied by their role's name."""
    tenant_groups = TenantGroup.objects.for_tenant(membership.tenant_id)
    role_name = Role(membership.role).label
    return Q(
        **{
            f"{prefix}in": tenant_groups.filter(
                Q(group__user=membership.user_id) | Q(name__iexact=role_name)
            ).values("group_id")
        }
    )


def has_dag_grant(membership: Membership, dag: Dag, codename: str) -> bool:
    """Does the member (or one of their tenant groups) hold a grant on `dag` that satisfies `codename`?"""
    from scheduler.models import DagGroupObjectPermission, DagUserObjectPermission

    perms = SATISFIED_BY[codename]
    if DagUserObjectPermission.objects.filter(
        user=membership.user_id, content_object=dag, permission__codename__in=perms
    ).exists():
        return True
    return DagGroupObjectPermission.objects.filter(
        _group_q(membership), content_object=dag, permission__codename__in=perms
    ).exists()


def filter_granted(membership: Membership, qs: QuerySet, action: str, dag_field: str = "") -> QuerySet:
    """`qs` narrowed in SQL to rows whose DAG (`dag_field` path, "" for Dag itself) the member may use for
    `action`; unchanged for members not limited to granted DAGs or for actions that are not per-DAG."""
    if not membership.grants_only or action not in DAG_PERMS:
        return qs
    from scheduler.models import DagGroupObjectPermission, DagUserObjectPermission

    perms = SATISFIED_BY[DAG_PERMS[action]]
    by_user = DagUserObjectPermission.objects.filter(
        user=membership.user_id, permission__codename__in=perms
    ).values("content_object_id")
    by_group = DagGroupObjectPermission.objects.filter(
        _group_q(membership), permission__codename__in=perms
    ).values("content_object_id")
    path = f"{dag_field}__pk__in" if dag_field else "pk__in"
    return qs.filter(Q(**{path: by_user}) | Q(**{path: by_group}))


def _permission(codename: str) -> Permission:
    if codename not in GRANT_PERMS:
        raise Invalid(f"unknown DAG permission {codename!r}: choose {', '.join(GRANT_PERMS)}")
    return Permission.objects.get(content_type__app_label="scheduler", codename=codename)


def ensure_group(*, tenant: Tenant, name: str) -> TenantGroup:
    """The tenant's group called `name` (role names are spelled as the role), created if needed."""
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("a group name is 1-100 characters")
    for role in Role:
        if name.lower() == role.label.lower():
            name = role.label
    existing = TenantGroup.objects.for_tenant(tenant).filter(name=name).first()
    if existing is not None:
        return existing
    group, _ = Group.objects.get_or_create(name=f"t{tenant.pk}:{name}")
    return TenantGroup.objects.create(tenant=tenant, group=group, name=name)


def _require_member(tenant: Tenant, user: AbstractUser) -> None:
    if not Membership.objects.for_tenant(tenant).filter(user=user).exists():
        raise Invalid(f"{user.get_username()!r} is not a member of this tenant")


def _grant_target(tenant: Tenant, dag: Dag, user: AbstractUser | None, group: TenantGroup | None) -> None:
    if dag.tenant_id != tenant.pk:
        raise Invalid("the DAG does not belong to this tenant")
    if (user is None) == (group is None):
        raise Invalid("a grant goes to exactly one user or one group")
    if user is not None:
        _require_member(tenant, user)
    elif group.tenant_id != tenant.pk:
        raise Invalid("the group does not belong to this tenant")


@transaction.atomic
def set_grant(
    *,
    tenant: Tenant,
    actor: Actor,
    dag: Dag,
    perms: list[str],
    user: AbstractUser | None = None,
    group: TenantGroup | None = None,
    request: HttpRequest | None = None,
) -> list[str]:
    """Make `perms` exactly the grants of one member (or group) of the tenant on `dag`; returns them."""
    from scheduler.models import DagGroupObjectPermission, DagUserObjectPermission

    _grant_target(tenant, dag, user, group)
    wanted = {_permission(codename) for codename in set(perms)}
    if user is not None:
        rows = DagUserObjectPermission.objects.filter(user=user, content_object=dag)
        target = {"user": user}
        label = user.get_username()
    else:
        rows = DagGroupObjectPermission.objects.filter(group=group.group, content_object=dag)
        target = {"group": group.group}
        label = f"group {group.name}"
    before = sorted(rows.values_list("permission__codename", flat=True))
    rows.exclude(permission__in=wanted).delete()
    model = DagUserObjectPermission if user is not None else DagGroupObjectPermission
    for permission in wanted:
        model.objects.get_or_create(permission=permission, content_object=dag, **target)
    after = sorted(p.codename for p in wanted)
    if before != after:
        record(
            tenant=tenant,
            actor=actor,
            action=AuditAction.GRANT_CHANGED,
            obj=dag,
            before={"grantee": label, "perms": before},
            after={"grantee": label, "perms": after},
            request=request,
        )
    return after


def list_grants(*, tenant: Tenant, dag: Dag) -> list[dict[str, Any]]:
    """Every grant on `dag`: [{"user"|"group": name, "perms": [...]}], users first."""
    from scheduler.models import DagGroupObjectPermission, DagUserObjectPermission

    result: dict[tuple[str, str], list[str]] = {}
    for username, codename in DagUserObjectPermission.objects.filter(content_object=dag).values_list(
        "user__username", "permission__codename"
    ):
        result.setdefault(("user", username), []).append(codename)
    names = dict(TenantGroup.objects.for_tenant(tenant).values_list("group_id", "name"))
    for group_id, codename in DagGroupObjectPermission.objects.filter(content_object=dag).values_list(
        "group_id", "permission__codename"
    ):
        if group_id in names:
            result.setdefault(("group", names[group_id]), []).append(codename)
    return [{kind: name, "perms": sorted(perms)} for (kind, name), perms in sorted(result.items())]


@transaction.atomic
def set_grants_only(
    *,
    tenant: Tenant,
    actor: Actor,
    membership: Membership,
    grants_only: bool,
    request: HttpRequest | None = None,
) -> Membership:
    """Limit (or stop limiting) a member's DAG rights to the DAGs granted to them or their groups."""
    if membership.tenant_id != tenant.pk:
        raise Invalid("not a member of this tenant")
    if membership.grants_only != grants_only:
        record(
            tenant=tenant,
            actor=actor,
            action=AuditAction.GRANT_CHANGED,
            obj=membership,
            before={"grants_only": membership.grants_only},
            after={"grants_only": grants_only},
            request=request,
        )
        membership.grants_only = grants_only
        membership.save(update_fields=["grants_only"])
    return membership


@transaction.atomic
def set_group_members(
    *,
    tenant: Tenant,
    actor: Actor,
    group: TenantGroup,
    users: list[AbstractUser],
    request: HttpRequest | None = None,
) -> None:
    """Make `users` (members of the tenant) exactly the members of a tenant group."""
    if group.tenant_id != tenant.pk:
        raise Invalid("the group does not belong to this tenant")
    for user in users:
        _require_member(tenant, user)
    before = sorted(group.group.user_set.values_list("username", flat=True))
    group.group.user_set.set(users)
    after = sorted(user.get_username() for user in users)
    record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.GROUP_CHANGED,
        obj=group,
        before={"members": before},
        after={"members": after},
        request=request,
    )


def forget_member(membership: Membership) -> None:
    """A member leaves: drop their grants on the tenant's DAGs and their tenant-group memberships."""
    from scheduler.models import DagUserObjectPermission

    DagUserObjectPermission.objects.filter(
        user=membership.user_id, content_object__tenant=membership.tenant_id
    ).delete()
    for tenant_group in TenantGroup.objects.for_tenant(membership.tenant_id).select_related("group"):
        tenant_group.group.user_set.remove(membership.user_id)


def parse_access_control(access_control: dict | None) -> dict[str, set[str]]:
    """Airflow's access_control ({role: {"can_read", ...}} or {role: {"DAGs": {...}, "DAG Runs": {...}}})
    as {group name: grant codenames}; unknown actions are ignored with a warning, as Airflow warns."""
    result: dict[str, set[str]] = {}
    for role, spec in (access_control or {}).items():
        perms: set[str] = set()
        resources = spec.items() if isinstance(spec, dict) else [("DAGs", spec)]
        for resource, actions in resources:
            table = _AIRFLOW_RUN_ACTIONS if resource == "DAG Runs" else _AIRFLOW_DAG_ACTIONS
            for action in actions or ():
                if resource not in {"DAGs", "DAG Runs"} or action not in table:
                    log.warning("access_control: ignoring %s %s for role %s", resource, action, role)
                    continue
                perms |= table[action]
        result[str(role)] = perms
    return result


@transaction.atomic
def apply_access_control(dag: Dag, access_control: dict | None) -> None:
    """Map a DAG file's access_control onto group grants on `dag` (called when a DAG version is
    activated). Grants the previous access_control created and this one no longer lists are taken back;
    grants given by hand to other groups or users are left alone."""
    from scheduler.models import DagGroupObjectPermission

    tenant = dag.tenant
    state, _ = DagAccessControl.objects.get_or_create(tenant=tenant, dag=dag)
    previous = {(name, perm) for name, perms in state.applied.items() for perm in perms}
    wanted = {
        (ensure_group(tenant=tenant, name=name).name, perm)
        for name, perms in parse_access_control(access_control).items()
        for perm in perms
    }
    if wanted == previous:
        return
    groups = {g.name: g.group for g in TenantGroup.objects.for_tenant(tenant).select_related("group")}
    for name, perm in previous - wanted:
        if name in groups:
            DagGroupObjectPermission.objects.filter(
                group=groups[name], content_object=dag, permission=_permission(perm)
            ).delete()
    for name, perm in wanted - previous:
        DagGroupObjectPermission.objects.get_or_create(
            group=groups[name], content_object=dag, permission=_permission(perm)
        )
    applied: dict[str, list[str]] = {}
    for name, perm in sorted(wanted):
        applied.setdefault(name, []).append(perm)
    state.applied = applied
    state.save(update_fields=["applied", "updated_at"])
    record(
        tenant=tenant,
        actor=Actor.system("access_control"),
        action=AuditAction.GRANT_CHANGED,
        obj=dag,
        before={"access_control": _as_lists(previous)},
        after={"access_control": applied},
    )


def _as_lists(pairs: set[tuple[str, str]]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for name, perm in sorted(pairs):
        result.setdefault(name, []).append(perm)
    return result
