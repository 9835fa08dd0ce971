"""Connections, variables and the per-tenant data keys that encrypt them.

Secret columns hold Fernet tokens made with the tenant's data key; the data key itself is stored only
wrapped (by the platform's MultiFernet keys or by Vault transit). Only tradewind.secrets decrypts.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from tenants.models import TenantOwned


class DataKey(TenantOwned):
    """A tenant's Fernet data key, wrapped. One is active (encrypts new values); older ones only decrypt
    values not yet re-encrypted by `rotate-keys`, which then deletes them."""

    class Wrapper(models.TextChoices):
        FERNET = "fernet", "Platform Fernet keys"
        VAULT = "vault", "Vault transit"

    wrapped_key = models.TextField()
    wrapper = models.CharField(max_length=16, choices=Wrapper.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rewrapped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant"], condition=Q(is_active=True), name="datakey_one_active")
        ]

    def __str__(self) -> str:
        return f"data key {self.pk} of tenant {self.tenant_id}"


class Variable(TenantOwned):
    """Airflow's Variable: a key and a string value (JSON when the author stored JSON), encrypted."""

    key = models.CharField(max_length=250)
    encrypted_value = models.TextField()
    data_key = models.ForeignKey(DataKey, on_delete=models.RESTRICT, related_name="+")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="variable_unique_key")]

    def __str__(self) -> str:
        return self.key


class Connection(TenantOwned):
    """Airflow's Connection fields; the password and the extra JSON are encrypted."""

    conn_id = models.CharField(max_length=250)
    conn_type = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    host = models.CharField(max_length=500, blank=True)
    schema = models.CharField(max_length=500, blank=True)
    login = models.TextField(blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    encrypted_password = models.TextField(blank=True)  # "" means no password
    encrypted_extra = models.TextField(blank=True)  # "" means no extra
    data_key = models.ForeignKey(DataKey, on_delete=models.RESTRICT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["conn_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "conn_id"], name="connection_unique_conn_id")
        ]

    def __str__(self) -> str:
        return self.conn_id
