from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.models import Membership
from tenants.roles import Role, can
from tenants.scoping import TenantViewSet
from tradewind.accounts import services
from tradewind.accounts.api.serializers import (
    ServiceAccountCreateSerializer,
    TokenCreateSerializer,
    TokenSerializer,
)
from tradewind.accounts.models import ApiToken, ServiceAccount
from tradewind.errors import Invalid


class TokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """API tokens: every member manages their own; admins (token.manage) see and manage everyone's.

    A new token's cap is never above the creator's current (possibly token-capped) role, so a token can
    not mint a stronger one. The secret is in the creation response only.
    """

    queryset = ApiToken.objects.all()
    serializer_class = TokenSerializer
    required = {"list": "token.own", "retrieve": "token.own", "create": "token.own", "destroy": "token.own"}

    def scope_queryset(self, qs):
        qs = qs.select_related("user")
        if can(self.request.membership, "token.manage"):
            return qs
        return qs.filter(user=self.request.user)

    def create(self, request: Request) -> Response:
        params = TokenCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        user = request.user
        if data.get("username") and data["username"] != request.user.get_username():
            if not can(request.membership, "token.manage"):
                raise PermissionDenied("Only admins create tokens for other users.")
            user = get_user_model().objects.filter(username=data["username"]).first()
            if user is None:
                raise Invalid(f"{data['username']!r} is not a member of this tenant")
        target = Membership.objects.for_tenant(request.tenant).filter(user=user).first()
        if target is None:
            raise Invalid(f"{user.get_username()!r} is not a member of this tenant")
        cap = data.get("role", Role(min(request.membership.role, target.role)))
        if cap > request.membership.role:
            raise PermissionDenied("A token cannot have a higher role than yours.")
        expires_at = data.get("expires_at")
        if data.get("expires_in_days"):
            expires_at = timezone.now() + timedelta(days=data["expires_in_days"])
        token, secret = services.create_token(
            tenant=request.tenant,
            actor=request.actor,
            user=user,
            name=data["name"],
            role_cap=cap,
            expires_at=expires_at,
            rate=data.get("rate", ""),
            request=request,
        )
        return Response({**TokenSerializer(token).data, "token": secret}, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.revoke_token(
            tenant=request.tenant, actor=request.actor, token=self.get_object(), request=request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ServiceAccountViewSet(mixins.ListModelMixin, TenantViewSet):
    """The tenant's service accounts (users that act only through tokens); admins create them."""

    queryset = ServiceAccount.objects.all()
    required = {"list": "token.manage", "create": "token.manage"}

    def scope_queryset(self, qs):
        return qs.select_related("user").order_by("user__username")

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(
            [{"id": s.pk, "username": s.user.username, "description": s.description} for s in page]
        )

    def create(self, request: Request) -> Response:
        params = ServiceAccountCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        if data["role"] > request.membership.role:
            raise PermissionDenied("A service account cannot have a higher role than yours.")
        user = services.create_service_account(
            tenant=request.tenant,
            actor=request.actor,
            name=data["name"],
            role=data["role"],
            description=data.get("description", ""),
            request=request,
        )
        return Response(
            {"username": user.username, "role": data["role"].name.lower()}, status=status.HTTP_201_CREATED
        )
