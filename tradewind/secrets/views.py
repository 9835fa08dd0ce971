"""The tenant's Connections and Variables pages: everyone reads (secrets as ***), Op and Admin edit."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from tenants.roles import can
from tenants.scoping import TenantView
from tradewind.errors import DomainError
from tradewind.secrets import services
from tradewind.secrets.models import Connection, Variable

CONNECTION_FORM_FIELDS = ("conn_type", "description", "host", "schema", "login", "port", "extra")


class ConnectionsView(TenantView):
    """List connections without their secrets; add, change (a blank password keeps it) and delete."""

    required = {"get": "connection.view", "post": "connection.edit"}

    def get(self, request: HttpRequest) -> HttpResponse:
        rows = self.scoped(Connection).select_related("data_key").order_by("conn_id")
        return render(
            request,
            "tenants/connections.html",
            {
                "connections": [services.public_connection(row) for row in rows],
                "can_edit": can(request.membership, "connection.edit"),
            },
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        conn_id = request.POST.get("conn_id", "").strip()
        try:
            if request.POST.get("op") == "delete":
                services.delete_connection(
                    tenant=request.tenant, actor=request.actor, conn_id=conn_id, request=request
                )
                messages.success(request, f"Deleted connection {conn_id}.")
            else:
                fields = {name: request.POST.get(name, "").strip() or None for name in CONNECTION_FORM_FIELDS}
                existing = self.scoped(Connection).select_related("data_key").filter(conn_id=conn_id).first()
                password = request.POST.get("password", "")
                if password:
                    fields["password"] = password
                elif existing is not None:
                    fields["password"] = services.connection_fields(existing)["password"]
                services.set_connection(
                    tenant=request.tenant,
                    actor=request.actor,
                    fields={"conn_id": conn_id, **fields},
                    request=request,
                )
                messages.success(request, f"Saved connection {conn_id}.")
        except DomainError as error:
            messages.error(request, str(error))
        return redirect("tenant-connections", tenant_slug=request.tenant.slug)


class VariablesView(TenantView):
    """List variables (values of sensitive keys as ***); set and delete them."""

    required = {"get": "variable.view", "post": "variable.edit"}

    def get(self, request: HttpRequest) -> HttpResponse:
        rows = self.scoped(Variable).select_related("data_key").order_by("key")
        variables = [
            {
                "key": row.key,
                "value": services.masked_variable_value(row.key, services.variable_value(row)),
                "description": row.description,
            }
            for row in rows
        ]
        return render(
            request,
            "tenants/variables.html",
            {"variables": variables, "can_edit": can(request.membership, "variable.edit")},
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        key = request.POST.get("key", "").strip()
        try:
            if request.POST.get("op") == "delete":
                services.delete_variable(tenant=request.tenant, actor=request.actor, key=key, request=request)
                messages.success(request, f"Deleted variable {key}.")
            else:
                services.set_variable(
                    tenant=request.tenant,
                    actor=request.actor,
                    key=key,
                    value=request.POST.get("value", ""),
                    description=request.POST.get("description", ""),
                    request=request,
                )
                messages.success(request, f"Saved variable {key}.")
        except DomainError as error:
            messages.error(request, str(error))
        return redirect("tenant-variables", tenant_slug=request.tenant.slug)
