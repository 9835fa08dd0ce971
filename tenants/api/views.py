from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scheduler.models import Dag
from tenants import services
from tenants.api.serializers import (
    GrantSerializer,
    GroupSerializer,
    MembershipChangeSerializer,
    MembershipSerializer,
    TenantSettingsSerializer,
)
from tenants.models import Membership
from tenants.roles import can
from tenants.scoping import HasAction, IsTenantMember, TenantViewSet
from tradewind.accounts import grants
from tradewind.accounts.models import TenantGroup
from tradewind.errors import Invalid, NotFound


class MembershipViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The tenant's members: everyone reads, admins change roles, limit members to granted DAGs, remove."""

    queryset = Membership.objects.all()
    serializer_class = MembershipSerializer
    required = {
        "list": "member.view",
        "retrieve": "member.view",
        "partial_update": "member.manage",
        "destroy": "member.manage",
    }

    def scope_queryset(self, qs):
        return qs.select_related("user")

    @transaction.atomic
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        params = MembershipChangeSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        membership = self.get_object()
        if "role" in params.validated_data:
            membership = services.change_role(
                membership=membership,
                role=params.validated_data["role"],
                actor=request.actor,
                request=request,
            )
        if "grants_only" in params.validated_data:
            if not can(request.membership, "grant.manage"):
                raise PermissionDenied("Your role in this tenant does not allow managing grants.")
            grants.set_grants_only(
                tenant=request.tenant,
                actor=request.actor,
                membership=membership,
                grants_only=params.validated_data["grants_only"],
                request=request,
            )
        return Response(MembershipSerializer(membership).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.remove_member(membership=self.get_object(), actor=request.actor, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _tenant_dag(request: Request, dag_id: str) -> Dag:
    dag = Dag.objects.for_tenant(request.tenant).filter(dag_id=dag_id).first()
    if dag is None:
        raise NotFound(f"DAG {dag_id!r} does not exist")
    return dag


def _tenant_group(request: Request, name: str) -> TenantGroup:
    group = TenantGroup.objects.for_tenant(request.tenant).select_related("group").filter(name=name).first()
    if group is None:
        raise NotFound(f"group {name!r} does not exist")
    return group


class GrantViewSet(TenantViewSet):
    """Per-DAG grants: `GET ?dag_id=X` lists a DAG's grants; `POST` sets one grantee's grants on a DAG."""

    queryset = Dag.objects.all()
    required = {"list": "member.view", "create": "grant.manage"}

    def list(self, request: Request) -> Response:
        dag = _tenant_dag(request, request.query_params.get("dag_id", ""))
        if not can(request.membership, "dag.view", dag):
            raise NotFound(f"DAG {dag.dag_id!r} does not exist")
        return Response({"dag_id": dag.dag_id, "grants": grants.list_grants(tenant=request.tenant, dag=dag)})

    def create(self, request: Request) -> Response:
        params = GrantSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        dag = _tenant_dag(request, data["dag_id"])
        user = group = None
        if data.get("username"):
            user = get_user_model().objects.filter(username=data["username"]).first()
            if user is None or not Membership.objects.for_tenant(request.tenant).filter(user=user).exists():
                raise Invalid(f"{data['username']!r} is not a member of this tenant")
        else:
            group = _tenant_group(request, data["group"])
        perms = grants.set_grant(
            tenant=request.tenant,
            actor=request.actor,
            dag=dag,
            perms=data["perms"],
            user=user,
            group=group,
            request=request,
        )
        return Response(
            {
                "dag_id": dag.dag_id,
                "username": data.get("username"),
                "group": data.get("group"),
                "perms": perms,
            }
        )


class GroupViewSet(TenantViewSet):
    """Tenant groups that grants can name; a group named like a role holds every member with that role."""

    queryset = TenantGroup.objects.all()
    lookup_field = "name"
    required = {"list": "member.view", "create": "grant.manage", "partial_update": "grant.manage"}

    def scope_queryset(self, qs):
        return qs.select_related("group").order_by("name")

    def _data(self, group: TenantGroup) -> dict:
        return {
            "name": group.name,
            "members": sorted(group.group.user_set.values_list("username", flat=True)),
        }

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([self._data(g) for g in page])

    @transaction.atomic
    def create(self, request: Request) -> Response:
        params = GroupSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        group = grants.ensure_group(tenant=request.tenant, name=params.validated_data["name"])
        if "members" in params.validated_data:
            self._set_members(request, group, params.validated_data["members"])
        return Response(self._data(group), status=status.HTTP_201_CREATED)

    @transaction.atomic
    def partial_update(self, request: Request, name: str | None = None) -> Response:
        group = self.get_object()
        members = request.data.get("members")
        if not isinstance(members, list):
            raise Invalid("members must be a list of usernames")
        self._set_members(request, group, members)
        return Response(self._data(group))

    def _set_members(self, request: Request, group: TenantGroup, usernames: list[str]) -> None:
        users = list(get_user_model().objects.filter(username__in=usernames))
        if len(users) != len(set(usernames)):
            raise Invalid("every member must be an existing user")
        grants.set_group_members(
            tenant=request.tenant, actor=request.actor, group=group, users=users, request=request
        )


class TenantSettingsView(APIView):
    """The tenant itself (`/t/<slug>/api/v1/tenant/`): every member reads it, admins rename it."""

    permission_classes = [IsTenantMember, HasAction]
    required = {"get": "tenant.view", "patch": "tenant.manage"}

    @property
    def action(self) -> str:
        return self.request.method.lower()

    def dispatch(self, request, *args, **kwargs):
        kwargs.pop("tenant_slug", None)  # the middleware already bound it
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: Request) -> Response:
        return Response(TenantSettingsSerializer(request.tenant).data)

    def patch(self, request: Request) -> Response:
        params = TenantSettingsSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        tenant = services.change_tenant_settings(
            tenant=request.tenant, actor=request.actor, name=params.validated_data["name"], request=request
        )
        return Response(TenantSettingsSerializer(tenant).data)
