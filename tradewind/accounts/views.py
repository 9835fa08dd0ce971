"""Log in, log out, and the landing page listing the user's tenants."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.queries import list_memberships


@login_required
def landing(request: HttpRequest) -> HttpResponse:
    """The user's tenants, each a link into it (suspended ones are listed but marked)."""
    return render(request, "accounts/landing.html", {"memberships": list_memberships(user=request.user)})
