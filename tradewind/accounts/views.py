"""Log in (with lockout), log out, the landing page listing the user's tenants, and the tokens page."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from tenants.queries import list_memberships
from tenants.roles import Role, can
from tenants.scoping import TenantView
from tradewind.accounts import lockout, services
from tradewind.accounts.models import ApiToken
from tradewind.errors import DomainError


@login_required
def landing(request: HttpRequest) -> HttpResponse:
    """The user's tenants, each a link into it (suspended ones are listed but marked)."""
    return render(request, "accounts/landing.html", {"memberships": list_memberships(user=request.user)})


class LockoutAuthenticationForm(AuthenticationForm):
    """Django's login form, telling a locked-out user so instead of "wrong password"."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Your username and password did not match. Please try again.",
        "locked_out": "Too many failed logins: try again in %(minutes)s minute(s).",
    }

    def clean(self) -> dict:
        username = self.cleaned_data.get("username")
        until = lockout.locked_until(username, self.request) if username else None
        if until is not None:
            minutes = max(1, round((until - timezone.now().timestamp()) / 60))
            try:
                super().clean()  # still counted and audited as a failed attempt by the backend
            except forms.ValidationError:
                pass
            raise forms.ValidationError(
                self.error_messages["locked_out"], code="locked_out", params={"minutes": minutes}
            )
        return super().clean()


class TokensView(TenantView):
    """The member's API tokens (an admin sees everyone's): create one (its secret is shown once), revoke."""

    required = {"get": "token.own", "post": "token.own"}

    def _tokens(self, request: HttpRequest):
        tokens = self.scoped(ApiToken).select_related("user")
        if not can(request.membership, "token.manage"):
            tokens = tokens.filter(user=request.user)
        return tokens

    def get(self, request: HttpRequest, new_token: str | None = None) -> HttpResponse:
        roles = [role for role in Role if role <= request.membership.role]
        return render(
            request,
            "tenants/tokens.html",
            {"tokens": self._tokens(request), "roles": roles, "new_token": new_token},
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            if request.POST.get("op") == "revoke":
                token = get_object_or_404(self._tokens(request), pk=request.POST.get("token"))
                services.revoke_token(
                    tenant=request.tenant, actor=request.actor, token=token, request=request
                )
                messages.success(request, f"Revoked {token.name}.")
                return redirect("tenant-tokens", tenant_slug=request.tenant.slug)
            role = Role.from_name(request.POST.get("role") or Role(request.membership.role).name)
            if role > request.membership.role:
                raise DomainError("A token cannot have a higher role than yours.")
            days = request.POST.get("expires_in_days", "").strip()
            expires_at = timezone.now() + timedelta(days=int(days)) if days else None
            token, secret = services.create_token(
                tenant=request.tenant,
                actor=request.actor,
                user=request.user,
                name=request.POST.get("name", ""),
                role_cap=role,
                expires_at=expires_at,
                request=request,
            )
        except (DomainError, ValueError) as error:
            messages.error(request, str(error))
            return redirect("tenant-tokens", tenant_slug=request.tenant.slug)
        messages.success(request, f"Created {token.name}: copy the token now, it will not be shown again.")
        return self.get(request, new_token=secret)
