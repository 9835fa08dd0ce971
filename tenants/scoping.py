"""Base classes for every tenant-scoped view: they cannot forget the tenant or the permission check.

The middleware has already bound `request.tenant` and `request.membership` (or answered 404/403). These
classes add the role check for each action and build every queryset from the tenant's rows, so another
tenant's object is simply not found (404).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.views import View
from rest_framework import permissions, viewsets
from rest_framework.request import Request

from tenants.roles import can
from tradewind.accounts.grants import filter_granted


def _forbid_overrides(cls: type, names: set[str]) -> None:
    overridden = names & cls.__dict__.keys()
    if overridden:
        raise TypeError(f"{cls.__name__}: extend scope_queryset(), not {', '.join(sorted(overridden))}")


class IsTenantMember(permissions.BasePermission):
    """The request was bound to a tenant by the middleware; anything else is 404."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if getattr(request, "membership", None) is None:
            raise Http404
        return True


def dag_of(obj: Any, dag_field: str) -> Any:
    """The DAG an object belongs to, following `dag_field` ("" means the object is the DAG)."""
    for name in filter(None, dag_field.split("__")):
        obj = getattr(obj, name)
    return obj


class HasAction(permissions.BasePermission):
    """The member's role allows the view's action, as `view.required` maps it; unmapped actions fail.

    For views over DAG-bound rows (`view.dag_field` set), each object is also checked against the member's
    per-DAG grants; a DAG the member may not even see answers 404, like another tenant's.
    """

    message = "Your role in this tenant does not allow this action."

    def has_permission(self, request: Request, view: Any) -> bool:
        if view.action is None:  # a method this route does not serve: DRF answers 405
            return True
        action = view.required.get(view.action)
        if action is None:
            raise ImproperlyConfigured(f"{type(view).__name__}.required has no entry for {view.action!r}")
        return can(request.membership, action)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        dag_field = getattr(view, "dag_field", None)
        if dag_field is None:
            return True
        dag = dag_of(obj, dag_field)
        if not can(request.membership, "dag.view", dag):
            raise Http404
        return can(request.membership, view.required[view.action], dag)


class TenantViewSet(viewsets.GenericViewSet):
    """Base for tenant API views: always this tenant's rows, always the membership checks."""

    required: dict[str, str] = {}  # view action -> matrix action, checked by HasAction
    # Path from a row to its DAG ("" for Dag itself, "dag_run__dag" for task instances); set it on views
    # over DAG-bound rows and members limited to granted DAGs see and touch only those, in SQL.
    dag_field: str | None = None
    lookup_value_regex = "[^/]+"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _forbid_overrides(cls, {"get_queryset", "get_permissions"})

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        kwargs.pop("tenant_slug", None)  # the middleware already bound it
        return super().dispatch(request, *args, **kwargs)

    def get_permissions(self) -> list[permissions.BasePermission]:  # subclasses can only add checks
        return [IsTenantMember(), HasAction(), *super().get_permissions()]

    def get_queryset(self) -> QuerySet:
        qs = self.queryset.model.objects.for_tenant(self.request.tenant)
        if self.dag_field is not None:
            qs = filter_granted(self.request.membership, qs, "dag.view", self.dag_field)
        return self.scope_queryset(qs)

    def scope_queryset(self, qs: QuerySet) -> QuerySet:
        """Narrow the tenant's rows further (filters, per-object grants)."""
        return qs


class TenantView(View):
    """Base for tenant UI views: `required` maps each HTTP method to the matrix action it needs.

    A method without an entry is not allowed at all. Cannot act: 403 (reading was allowed by membership).
    """

    required: dict[str, str] = {}

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        kwargs.pop("tenant_slug", None)  # the middleware already bound it
        if getattr(request, "membership", None) is None:
            raise Http404
        action = self.required.get(request.method.lower())
        if action is None:
            return self.http_method_not_allowed(request, *args, **kwargs)
        if not can(request.membership, action):
            raise PermissionDenied("Your role in this tenant does not allow this action.")
        return super().dispatch(request, *args, **kwargs)

    def scoped(self, model: type[Model], dag_field: str | None = None) -> QuerySet:
        """The tenant's rows of `model`: the only way these views reach tenant-owned data. With `dag_field`
        (the path from a row to its DAG, "" for Dag), only rows of DAGs the member may see."""
        qs = model.objects.for_tenant(self.request.tenant)
        if dag_field is not None:
            qs = filter_granted(self.request.membership, qs, "dag.view", dag_field)
        return qs
