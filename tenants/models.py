"""Tenants, memberships and the base class of every tenant-owned row."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from tenants.roles import Role

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$",
    "A tenant slug is 1-50 lower-case letters, digits and inner hyphens.",
)


class TenantQuerySet(models.QuerySet):
    """Rows of one tenant; the only way request-serving code reaches tenant-owned rows."""

    def for_tenant(self, tenant: Tenant | int) -> TenantQuerySet:
        return self.filter(tenant=tenant)


class TenantOwned(models.Model):
    """Base for every row that belongs to exactly one tenant."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class Tenant(models.Model):
    """A team: its DAGs, runs, secrets and members are invisible to every other tenant."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    slug = models.CharField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    max_active_tasks = models.PositiveIntegerField(default=32, validators=[MinValueValidator(1)])
    max_active_runs = models.PositiveIntegerField(default=16, validators=[MinValueValidator(1)])
    max_dags = models.PositiveIntegerField(default=500, validators=[MinValueValidator(1)])
    max_bundle_bytes = models.PositiveBigIntegerField(
        default=100 * 1024 * 1024, validators=[MinValueValidator(1)]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Membership(TenantOwned):
    """A user's role in one tenant; a user may belong to several tenants."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.VIEWER)
    # True: the role's DAG rights apply only to DAGs the member (or a group of theirs) was granted.
    grants_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant__slug", "user__username"]
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} as {self.get_role_display()}"
