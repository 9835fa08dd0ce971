"""Turns the `/t/<slug>/` URL prefix into `request.tenant` and `request.membership`."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from tenants.queries import get_membership

TENANT_PREFIX = re.compile(r"^/t/(?P<slug>[^/]+)/")


class TenantMiddleware:
    """Binds the tenant of `/t/<slug>/...` requests, or refuses them.

    Anonymous users are sent to log in (the API answers 401); a tenant that does not exist and a tenant
    the user is not a member of both answer 404, so existence does not leak; a suspended tenant answers
    403 with a clear message. Requests outside `/t/` get `request.tenant = None`.

    An API token (resolved earlier by ApiTokenMiddleware into `request.api_token`) only works in its own
    tenant (any other slug answers 404), and the membership it acts with has the lesser of the member's
    role and the token's cap.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.tenant = None
        request.membership = None
        match = TENANT_PREFIX.match(request.path_info)
        if match is None:
            return self.get_response(request)
        is_api = "/api/" in request.path_info
        if not request.user.is_authenticated:
            if is_api:
                return JsonResponse({"detail": "Authentication credentials were not provided."}, status=401)
            return redirect_to_login(request.get_full_path())
        membership = get_membership(
            user=request.user, slug=match["slug"], token=getattr(request, "api_token", None)
        )
        if membership is None:
            if is_api:
                return JsonResponse({"detail": "Not found."}, status=404)
            return render(request, "404.html", status=404)
        tenant = membership.tenant
        if not tenant.is_active:
            message = f"Tenant {tenant.slug!r} is suspended: contact your platform administrator."
            if is_api:
                return JsonResponse({"detail": message}, status=403)
            return render(request, "tenants/suspended.html", {"message": message}, status=403)
        request.tenant = tenant
        request.membership = membership
        return self.get_response(request)
