"""Audit receivers for events that do not pass through our services: logins and Django admin changes."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.exceptions import ObjectDoesNotExist
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest

from tradewind.accounts import lockout
from tradewind.accounts.actors import Actor
from tradewind.audit.actions import AuditAction
from tradewind.audit.services import record


@receiver(user_logged_in, dispatch_uid="audit_login_succeeded")
def _login_succeeded(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    lockout.note_success(user.get_username(), request)
    record(tenant=None, actor=Actor.for_user(user), action=AuditAction.LOGIN_SUCCEEDED, request=request)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def _logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is not None:
        record(tenant=None, actor=Actor.for_user(user), action=AuditAction.LOGOUT, request=request)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _login_failed(sender: Any, credentials: dict, request: HttpRequest | None = None, **kwargs: Any) -> None:
    username = str(credentials.get("username") or "")[:150]
    already_locked = lockout.locked_until(username, request) is not None
    starts_lockout = not already_locked and lockout.note_failure(username, request)
    record(
        tenant=None,
        actor=Actor.anonymous(username),
        action=AuditAction.LOGIN_LOCKED_OUT if starts_lockout else AuditAction.LOGIN_FAILED,
        detail={"username": username, "reason": "locked out" if already_locked else "bad credentials"},
        request=request,
    )


@receiver(post_save, sender=LogEntry, dispatch_uid="audit_admin_change")
def _admin_change(sender: Any, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    """Platform superusers manage tenants in Django's admin; each change is audited like anyone's, in the
    tenant's own chain when the object belongs to a tenant."""
    if not created:
        return
    from tenants.models import Tenant

    obj = None
    if instance.action_flag != DELETION:
        try:
            obj = instance.get_edited_object()
        except ObjectDoesNotExist:
            obj = None
    tenant = None
    if isinstance(obj, Tenant):
        tenant = obj
    elif obj is not None and getattr(obj, "tenant_id", None):
        tenant = Tenant.objects.filter(pk=obj.tenant_id).first()
    record(
        tenant=tenant,
        actor=Actor.for_user(instance.user),
        action=AuditAction.ADMIN_CHANGE,
        detail={
            "operation": {1: "added", 2: "changed", 3: "deleted"}.get(instance.action_flag, "?"),
            "object_type": f"{instance.content_type.app_label}.{instance.content_type.model}"
            if instance.content_type
            else "",
            "object_id": instance.object_id,
            "object_repr": instance.object_repr,
            "change_message": instance.get_change_message(),
        },
    )
