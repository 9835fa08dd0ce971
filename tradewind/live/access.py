"""Who may open a live stream: the websocket twin of ApiTokenMiddleware + TenantMiddleware + can().

A handshake authenticates with an API token (`Authorization: Bearer twk_...`, or `?token=twk_...` for
browsers, which cannot set headers on a websocket) or else with the session cookie. A presented token that
is unknown, expired or revoked is refused (4401) and never falls back to the session, as over HTTP. The
token only works in its own tenant and caps the member's role, as over HTTP.

Refusals do not leak existence: an unknown tenant, a tenant the user is not a member of, an unknown DAG,
another tenant's DAG and a DAG the member may not view are all 4404; a suspended tenant is 4403 for its
members only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from django.http import HttpRequest

from scheduler.models import Dag
from tenants.models import Membership, Tenant
from tenants.queries import get_membership
from tenants.roles import can
from tradewind.accounts import services as accounts
from tradewind.accounts.models import ApiToken
from tradewind.live.groups import dag_group, tenant_group


class CloseCode(enum.IntEnum):
    """Websocket close codes of a refused handshake (the 4000-4999 range is the application's)."""

    UNAUTHENTICATED = 4401
    SUSPENDED = 4403
    NOT_FOUND = 4404


@dataclass(frozen=True)
class LiveAccess:
    """A granted stream: the tenant, the member (role capped by the token used, if any), and the DAG for a
    DAG stream (None for the tenant-wide stream)."""

    tenant: Tenant
    membership: Membership
    dag: Dag | None

    @property
    def groups(self) -> list[str]:
        """The channel layer groups this stream listens to."""
        if self.dag is None:
            return [tenant_group(self.tenant.pk)]
        return [dag_group(self.tenant.pk, self.dag.dag_id)]


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {name.decode("latin1").lower(): value.decode("latin1") for name, value in scope.get("headers", [])}


def presented_token(scope: dict[str, Any]) -> str | None:
    """The raw API token the handshake carries (header first, then the query string), or None."""
    scheme, _, credentials = _headers(scope).get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    values = parse_qs(scope.get("query_string", b"").decode("latin1"), keep_blank_values=True).get("token")
    return values[0].strip() if values else None


def _handshake_request(scope: dict[str, Any], token: ApiToken) -> HttpRequest:
    """The handshake as the HttpRequest that accounts.touch_token and the audit log read (never the query
    string: it may hold the token)."""
    headers = _headers(scope)
    request = HttpRequest()
    request.method = "GET"
    request.path = request.path_info = scope.get("path", "")
    client = scope.get("client") or ("", 0)
    request.META = {
        "REMOTE_ADDR": client[0] or "",
        "HTTP_USER_AGENT": headers.get("user-agent", ""),
        "HTTP_X_REQUEST_ID": headers.get("x-request-id", ""),
    }
    request.api_token = token
    request.user = token.user
    return request


def resolve_access(scope: dict[str, Any], slug: str, dag_id: str | None = None) -> LiveAccess | CloseCode:
    """May this handshake open the stream of tenant `slug` (and of its DAG `dag_id`)? The granted access,
    or the code to close the handshake with. Needs "dag.view" for the tenant, and on the DAG for a DAG
    stream (per-DAG grants apply to members limited to granted DAGs)."""
    raw = presented_token(scope)
    token: ApiToken | None = None
    if raw is not None:
        token = accounts.authenticate_token(raw)
        if token is None:
            return CloseCode.UNAUTHENTICATED
        user = token.user
        accounts.touch_token(token, _handshake_request(scope, token))
    else:
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            return CloseCode.UNAUTHENTICATED
    membership = get_membership(user=user, slug=slug, token=token)
    if membership is None:
        return CloseCode.NOT_FOUND
    tenant = membership.tenant
    if not tenant.is_active:
        return CloseCode.SUSPENDED
    if not can(membership, "dag.view"):
        return CloseCode.NOT_FOUND
    dag = None
    if dag_id is not None:
        dag = Dag.objects.for_tenant(tenant).filter(dag_id=dag_id).first()
        if dag is None or not can(membership, "dag.view", dag):
            return CloseCode.NOT_FOUND
    return LiveAccess(tenant=tenant, membership=membership, dag=dag)


def may_view_dag(membership: Membership, dag_id: str) -> bool:
    """May the member see the events of the DAG `dag_id` of their tenant (the per-event check for members
    limited to granted DAGs)?"""
    dag = Dag.objects.for_tenant(membership.tenant_id).filter(dag_id=dag_id).first()
    return dag is not None and can(membership, "dag.view", dag)
