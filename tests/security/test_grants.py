"""Per-DAG grants narrow a membership (never widen it); DAG files' access_control becomes group grants."""

from __future__ import annotations

import pytest

from tenants.models import Membership
from tenants.roles import Role, can
from tenants.services import add_member
from tradewind.accounts import grants
from tradewind.accounts.actors import Actor
from tradewind.accounts.models import TenantGroup
from tradewind.audit.models import AuditEntry
from tradewind.errors import Invalid

ACTOR = Actor.system("tests")


@pytest.fixture
def narrowed(tenant, make_member):
    """A User-role member limited to granted DAGs."""
    user = make_member(tenant, Role.USER)
    membership = Membership.objects.get(user=user, tenant=tenant)
    grants.set_grants_only(tenant=tenant, actor=ACTOR, membership=membership, grants_only=True)
    return membership


def test_without_grants_only_the_role_decides(tenant, make_member, make_dag):
    dag = make_dag(tenant, "etl")
    member = Membership.objects.get(user=make_member(tenant, Role.USER))
    assert can(member, "run.trigger", dag) and can(member, "dag.view", dag)
    assert not can(member, "connection.edit", dag)


def test_grants_only_member_needs_a_grant_per_dag(tenant, narrowed, make_dag):
    granted, other = make_dag(tenant, "granted"), make_dag(tenant, "other")
    grants.set_grant(tenant=tenant, actor=ACTOR, dag=granted, perms=["view_dag"], user=narrowed.user)
    assert can(narrowed, "dag.view", granted) and can(narrowed, "log.view", granted)
    assert not can(narrowed, "run.trigger", granted)
    assert not can(narrowed, "dag.view", other)
    assert can(narrowed, "variable.view")  # actions that are not about one DAG are untouched
    grants.set_grant(tenant=tenant, actor=ACTOR, dag=granted, perms=["trigger_dag"], user=narrowed.user)
    assert can(narrowed, "run.trigger", granted) and can(
        narrowed, "dag.view", granted
    )  # trigger implies view
    assert not can(narrowed, "dag.edit", granted)


def test_a_grant_never_adds_to_the_role(tenant, make_member, make_dag):
    dag = make_dag(tenant, "etl")
    viewer = Membership.objects.get(user=make_member(tenant, Role.VIEWER))
    grants.set_grant(
        tenant=tenant, actor=ACTOR, dag=dag, perms=["trigger_dag", "change_dag"], user=viewer.user
    )
    grants.set_grants_only(tenant=tenant, actor=ACTOR, membership=viewer, grants_only=True)
    assert not can(viewer, "run.trigger", dag) and not can(viewer, "dag.edit", dag)
    assert can(viewer, "dag.view", dag)


def test_superusers_get_nothing_extra_inside_a_tenant(tenant, make_member, make_dag):
    dag = make_dag(tenant, "etl")
    user = make_member(tenant, Role.VIEWER)
    user.is_superuser = True
    user.save()
    membership = Membership.objects.get(user=user)
    assert not can(membership, "run.trigger", dag)
    grants.set_grants_only(tenant=tenant, actor=ACTOR, membership=membership, grants_only=True)
    assert not can(membership, "dag.view", dag)  # guardian would say yes to a superuser; we do not ask it


def test_group_grants_and_role_groups(tenant, narrowed, make_member, make_dag):
    dag = make_dag(tenant, "etl")
    team = grants.ensure_group(tenant=tenant, name="data-team")
    grants.set_grant(tenant=tenant, actor=ACTOR, dag=dag, perms=["trigger_dag"], group=team)
    assert not can(narrowed, "run.trigger", dag)
    grants.set_group_members(tenant=tenant, actor=ACTOR, group=team, users=[narrowed.user])
    assert can(narrowed, "run.trigger", dag)
    # A group named like a role holds every member with that role, without adding them.
    other = make_dag(tenant, "other")
    grants.set_grant(
        tenant=tenant,
        actor=ACTOR,
        dag=other,
        perms=["view_dag"],
        group=grants.ensure_group(tenant=tenant, name="user"),
    )
    assert can(narrowed, "dag.view", other) and not can(narrowed, "run.trigger", other)


def test_grants_go_only_to_members_and_groups_of_the_dags_tenant(tenant, other_tenant, make_member, make_dag):
    dag = make_dag(tenant, "etl")
    stranger = make_member(other_tenant, Role.ADMIN)
    with pytest.raises(Invalid):
        grants.set_grant(tenant=tenant, actor=ACTOR, dag=dag, perms=["view_dag"], user=stranger)
    foreign_group = grants.ensure_group(tenant=other_tenant, name="team")
    with pytest.raises(Invalid):
        grants.set_grant(tenant=tenant, actor=ACTOR, dag=dag, perms=["view_dag"], group=foreign_group)
    with pytest.raises(Invalid):
        grants.set_grant(tenant=other_tenant, actor=ACTOR, dag=dag, perms=["view_dag"], user=stranger)
    with pytest.raises(Invalid):
        grants.set_group_members(
            tenant=tenant, actor=ACTOR, group=grants.ensure_group(tenant=tenant, name="t"), users=[stranger]
        )


def test_lists_are_filtered_in_sql(tenant, narrowed, make_dag, django_assert_max_num_queries):
    from scheduler.models import Dag, DagGroupObjectPermission

    dags = [make_dag(tenant, f"dag{i}") for i in range(6)]
    grants.set_grant(tenant=tenant, actor=ACTOR, dag=dags[0], perms=["view_dag"], user=narrowed.user)
    grants.set_grant(
        tenant=tenant,
        actor=ACTOR,
        dag=dags[3],
        perms=["trigger_dag"],
        group=grants.ensure_group(tenant=tenant, name="User"),
    )
    with django_assert_max_num_queries(1):
        visible = list(grants.filter_granted(narrowed, Dag.objects.for_tenant(tenant), "dag.view"))
    assert {d.dag_id for d in visible} == {"dag0", "dag3"}
    triggerable = grants.filter_granted(narrowed, Dag.objects.for_tenant(tenant), "run.trigger")
    assert [d.dag_id for d in triggerable] == ["dag3"]
    assert DagGroupObjectPermission.objects.count() == 1


def test_removing_a_member_drops_their_grants(tenant, narrowed, make_member, make_dag):
    from scheduler.models import DagUserObjectPermission

    make_member(tenant, Role.ADMIN)
    dag = make_dag(tenant, "etl")
    grants.set_grant(tenant=tenant, actor=ACTOR, dag=dag, perms=["view_dag"], user=narrowed.user)
    from tenants.services import remove_member

    remove_member(membership=narrowed)
    assert not DagUserObjectPermission.objects.filter(user=narrowed.user).exists()
    add_member(tenant=tenant, user=narrowed.user, role=Role.USER)  # coming back starts from nothing


def test_access_control_maps_onto_group_grants_and_follows_new_versions(tenant, make_member, make_dag):
    dag = make_dag(tenant, "etl")
    analyst = Membership.objects.get(user=make_member(tenant, Role.VIEWER))
    grants.set_grants_only(tenant=tenant, actor=ACTOR, membership=analyst, grants_only=True)
    hand = grants.ensure_group(tenant=tenant, name="auditors")
    grants.set_grant(tenant=tenant, actor=ACTOR, dag=dag, perms=["view_dag"], group=hand)

    grants.apply_access_control(dag, {"Viewer": {"can_read"}, "data_eng": {"can_read", "can_edit"}})
    assert can(analyst, "dag.view", dag)
    assert TenantGroup.objects.for_tenant(tenant).filter(name="data_eng").exists()
    assert {g["group"]: g["perms"] for g in grants.list_grants(tenant=tenant, dag=dag)} == {
        "Viewer": ["view_dag"],
        "auditors": ["view_dag"],
        "data_eng": ["change_dag", "trigger_dag", "view_dag"],
    }
    # Airflow 2.x's per-resource form, on the next version: what is no longer listed is taken back,
    # grants given by hand stay.
    grants.apply_access_control(dag, {"data_eng": {"DAGs": {"can_read"}, "DAG Runs": {"can_create"}}})
    assert not can(analyst, "dag.view", dag)
    assert {g["group"]: g["perms"] for g in grants.list_grants(tenant=tenant, dag=dag)} == {
        "auditors": ["view_dag"],
        "data_eng": ["trigger_dag", "view_dag"],
    }
    grants.apply_access_control(dag, None)
    assert {g["group"] for g in grants.list_grants(tenant=tenant, dag=dag)} == {"auditors"}
    assert (
        AuditEntry.objects.for_tenant(tenant)
        .filter(action="grant.changed", actor_label="access_control")
        .count()
        == 3
    )


def test_grants_api(tenant, api_for, make_member, make_dag, other_tenant):
    make_dag(tenant, "etl")
    make_dag(other_tenant, "theirs")
    member = make_member(tenant, Role.USER)
    admin = api_for(tenant, Role.ADMIN)
    url = f"/t/{tenant.slug}/api/v1/grants/"
    response = admin.post(
        url, {"dag_id": "etl", "username": member.username, "perms": ["view_dag"]}, format="json"
    )
    assert response.status_code == 200 and response.json()["perms"] == ["view_dag"]
    assert (
        admin.post(
            url, {"dag_id": "theirs", "username": member.username, "perms": ["view_dag"]}, format="json"
        ).status_code
        == 404
    )
    assert admin.get(f"{url}?dag_id=etl").json()["grants"] == [
        {"user": member.username, "perms": ["view_dag"]}
    ]
    membership = Membership.objects.get(user=member)
    patched = admin.patch(
        f"/t/{tenant.slug}/api/v1/members/{membership.pk}/", {"grants_only": True}, format="json"
    )
    assert patched.status_code == 200 and patched.json()["grants_only"] is True
    op = api_for(tenant, Role.OP)
    assert (
        op.post(url, {"dag_id": "etl", "username": member.username, "perms": []}, format="json").status_code
        == 403
    )
    groups = f"/t/{tenant.slug}/api/v1/groups/"
    assert (
        admin.post(groups, {"name": "team", "members": [member.username]}, format="json").status_code == 201
    )
    assert op.get(groups).json()["results"] == [{"name": "team", "members": [member.username]}]
    assert (
        admin.post(
            url, {"dag_id": "etl", "group": "team", "perms": ["trigger_dag"]}, format="json"
        ).status_code
        == 200
    )
