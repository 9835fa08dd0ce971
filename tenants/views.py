"""The tenant's pages: its home and the members console."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from tenants import services
from tenants.models import Membership
from tenants.roles import Role, can
from tenants.scoping import TenantView
from tradewind.errors import DomainError


class TenantHomeView(TenantView):
    """The tenant's front page."""

    required = {"get": "tenant.view"}

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "tenants/home.html", {"member_count": self.scoped(Membership).count()})


class MembersView(TenantView):
    """Members and their roles; admins change roles and remove members here."""

    required = {"get": "member.view", "post": "member.manage"}

    def get(self, request: HttpRequest) -> HttpResponse:
        members = self.scoped(Membership).select_related("user").order_by("user__username")
        return render(
            request,
            "tenants/members.html",
            {"members": members, "roles": Role, "can_manage": can(request.membership, "member.manage")},
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        membership = get_object_or_404(self.scoped(Membership), pk=request.POST.get("membership"))
        try:
            if request.POST.get("op") == "remove":
                services.remove_member(membership=membership, actor=request.actor, request=request)
                messages.success(request, f"Removed {membership.user.username}.")
            else:
                role = Role.from_name(request.POST.get("role", ""))
                services.change_role(membership=membership, role=role, actor=request.actor, request=request)
                messages.success(request, f"{membership.user.username} is now {role.label}.")
        except (DomainError, ValueError) as error:
            messages.error(request, str(error))
        return redirect("tenant-members", tenant_slug=request.tenant.slug)
