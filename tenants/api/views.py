from __future__ import annotations

from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from tenants import services
from tenants.api.serializers import MembershipSerializer, RoleChangeSerializer
from tenants.models import Membership
from tenants.scoping import TenantViewSet


class MembershipViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The tenant's members: everyone reads, admins change roles and remove members."""

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

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        params = RoleChangeSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        membership = services.change_role(membership=self.get_object(), role=params.validated_data["role"])
        return Response(MembershipSerializer(membership).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.remove_member(membership=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
