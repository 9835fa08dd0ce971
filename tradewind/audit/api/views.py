from __future__ import annotations

import io

from django.http import HttpResponse
from django.utils.dateparse import parse_datetime
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.scoping import TenantViewSet
from tradewind.audit import queries
from tradewind.audit.actions import AuditAction
from tradewind.audit.models import AuditEntry
from tradewind.audit.services import record
from tradewind.errors import Invalid


class AuditEntryViewSet(TenantViewSet):
    """The tenant's audit log, newest last; filters: since, until, actor, action, object_type, object_id.
    `export/?fmt=csv|jsonl` downloads the filtered entries."""

    queryset = AuditEntry.objects.all()
    required = {"list": "audit.view", "export": "audit.view"}

    def _filtered(self, request: Request):
        params = request.query_params
        times = {}
        for name in ("since", "until"):
            if params.get(name):
                times[name] = parse_datetime(params[name])
                if times[name] is None:
                    raise Invalid(f"{name} must be an ISO date-time")
        return queries.list_entries(
            chain=request.tenant.pk,
            actor=params.get("actor") or None,
            action=params.get("action") or None,
            object_type=params.get("object_type") or None,
            object_id=params.get("object_id") or None,
            **times,
        )

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self._filtered(request))
        return self.get_paginated_response([queries.entry_row(entry) for entry in page])

    @action(detail=False, methods=["get"])
    def export(self, request: Request) -> HttpResponse:
        fmt = request.query_params.get("fmt", "jsonl")
        if fmt not in {"csv", "jsonl"}:
            raise Invalid("fmt is csv or jsonl")
        buffer = io.StringIO()
        write = queries.write_csv if fmt == "csv" else queries.write_jsonl
        count = write(self._filtered(request), buffer)
        record(
            tenant=request.tenant,
            actor=request.actor,
            action=AuditAction.AUDIT_EXPORTED,
            detail={"count": count, "format": fmt},
            request=request,
        )
        content_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
        response = HttpResponse(buffer.getvalue(), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="audit-{request.tenant.slug}.{fmt}"'
        return response
