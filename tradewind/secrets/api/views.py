from __future__ import annotations

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.scoping import TenantViewSet
from tradewind.errors import Invalid
from tradewind.secrets import services
from tradewind.secrets.api.serializers import ConnectionWriteSerializer, VariableWriteSerializer
from tradewind.secrets.models import Connection, Variable


def _variable_data(variable: Variable) -> dict:
    return {
        "key": variable.key,
        "value": services.masked_variable_value(variable.key, services.variable_value(variable)),
        "description": variable.description,
        "updated_at": variable.updated_at,
    }


class ConnectionViewSet(TenantViewSet):
    """The tenant's connections. Responses never contain the password or extra values (`***`)."""

    queryset = Connection.objects.all()
    lookup_field = "conn_id"
    required = {
        "list": "connection.view",
        "retrieve": "connection.view",
        "create": "connection.edit",
        "update": "connection.edit",
        "partial_update": "connection.edit",
        "destroy": "connection.edit",
    }

    def scope_queryset(self, qs):
        return qs.select_related("data_key").order_by("conn_id")

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([services.public_connection(c) for c in page])

    def retrieve(self, request: Request, conn_id: str | None = None) -> Response:
        return Response(services.public_connection(self.get_object()))

    def create(self, request: Request) -> Response:
        params = ConnectionWriteSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        connection = services.set_connection(
            tenant=request.tenant,
            actor=request.actor,
            fields=params.validated_data,
            create_only=True,
            request=request,
        )
        return Response(services.public_connection(connection), status=status.HTTP_201_CREATED)

    def update(self, request: Request, conn_id: str | None = None, partial: bool = False) -> Response:
        existing = self.get_object()
        params = ConnectionWriteSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        changes = dict(params.validated_data)
        if changes.get("conn_id", existing.conn_id) != existing.conn_id:
            raise Invalid("conn_id cannot be changed")
        if "uri" in changes:
            fields = {"conn_id": existing.conn_id, "uri": changes["uri"]}
        else:
            fields = {**services.connection_fields(existing), **changes}
        connection = services.set_connection(
            tenant=request.tenant, actor=request.actor, fields=fields, request=request
        )
        return Response(services.public_connection(connection))

    def partial_update(self, request: Request, conn_id: str | None = None) -> Response:
        return self.update(request, conn_id, partial=True)

    def destroy(self, request: Request, conn_id: str | None = None) -> Response:
        connection = self.get_object()
        services.delete_connection(
            tenant=request.tenant, actor=request.actor, conn_id=connection.conn_id, request=request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class VariableViewSet(TenantViewSet):
    """The tenant's variables; values of sensitive keys are answered as `***`."""

    queryset = Variable.objects.all()
    lookup_field = "key"
    required = {
        "list": "variable.view",
        "retrieve": "variable.view",
        "create": "variable.edit",
        "update": "variable.edit",
        "partial_update": "variable.edit",
        "destroy": "variable.edit",
    }

    def scope_queryset(self, qs):
        return qs.select_related("data_key").order_by("key")

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([_variable_data(v) for v in page])

    def retrieve(self, request: Request, key: str | None = None) -> Response:
        return Response(_variable_data(self.get_object()))

    def create(self, request: Request) -> Response:
        params = VariableWriteSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        if not params.validated_data.get("key"):
            raise Invalid("key is required")
        variable = services.set_variable(
            tenant=request.tenant,
            actor=request.actor,
            key=params.validated_data["key"],
            value=params.validated_data["value"],
            description=params.validated_data.get("description") or "",
            request=request,
        )
        return Response(_variable_data(variable), status=status.HTTP_201_CREATED)

    def update(self, request: Request, key: str | None = None) -> Response:
        existing = self.get_object()
        params = VariableWriteSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        if params.validated_data.get("key", existing.key) != existing.key:
            raise Invalid("key cannot be changed")
        variable = services.set_variable(
            tenant=request.tenant,
            actor=request.actor,
            key=existing.key,
            value=params.validated_data["value"],
            description=params.validated_data.get("description"),
            request=request,
        )
        return Response(_variable_data(variable))

    def partial_update(self, request: Request, key: str | None = None) -> Response:
        return self.update(request, key)

    def destroy(self, request: Request, key: str | None = None) -> Response:
        variable = self.get_object()
        services.delete_variable(
            tenant=request.tenant, actor=request.actor, key=variable.key, request=request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
