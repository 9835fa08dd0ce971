"""API tokens, service accounts, tenant groups for per-DAG grants, and the DAG files' access_control."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone

from tenants.models import TenantOwned
from tenants.roles import Role

TOKEN_PREFIX = "twk_"


class ApiToken(TenantOwned):
    """A bearer token: acts as `user` in one tenant with at most `role_cap`, until it expires or is revoked.

    Only a sha256 digest of the secret is stored (the secret is shown once, when it is created); `prefix`
    (the first characters) lets people recognise a token in lists and logs.
    """

    class Kind(models.TextChoices):
        PERSONAL = "personal", "Personal"
        SERVICE = "service", "Service account"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PERSONAL)
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    role_cap = models.PositiveSmallIntegerField(choices=Role.choices)
    rate = models.CharField(max_length=32, blank=True)  # e.g. "100/min"; blank: TRADEWIND_TOKEN_RATE
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.CharField(max_length=45, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_usable(self) -> bool:
        """Not revoked, not expired, and its user may still log in."""
        return self.revoked_at is None and not self.is_expired and self.user.is_active


class ServiceAccount(TenantOwned):
    """A non-person user owned by one tenant, used only through its API tokens (it cannot log in)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="service_account"
    )
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.user.get_username()


class TenantGroup(TenantOwned):
    """A group of a tenant's members that per-DAG grants can name (the DAG files' access_control roles).

    A group named like a role ("Viewer", "User", "Op", "Admin") implicitly holds every member with that
    role; other groups hold the members an admin adds.
    """

    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="tenant_group")
    name = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="tenantgroup_unique_name")]

    def __str__(self) -> str:
        return self.name


class DagAccessControl(TenantOwned):
    """The access_control last applied from a DAG file: the grants it created, so the next version can
    take back what it no longer lists without touching grants given by hand."""

    dag = models.OneToOneField("scheduler.Dag", on_delete=models.CASCADE, related_name="+")
    applied = models.JSONField(default=dict)  # {group name: [permission codenames]}
    updated_at = models.DateTimeField(auto_now=True)
