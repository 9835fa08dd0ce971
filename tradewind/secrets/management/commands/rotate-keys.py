"""`manage.py rotate-keys`: re-wrap data keys and re-encrypt every connection and variable."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.models import Tenant
from tradewind.accounts.actors import Actor
from tradewind.errors import DomainError
from tradewind.secrets import keys, vault
from tradewind.secrets.rotation import rotate_tenant_keys


class Command(BaseCommand):
    help = (
        "Rotate encryption keys while the system runs. Put the new key first in TRADEWIND_FERNET_KEYS (keep "
        "the old one after it), restart, run this, then remove the old key. With Vault transit wrapping, "
        "--rotate-transit-key first adds a new transit key version."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="only this tenant (default: every tenant)")
        parser.add_argument(
            "--rotate-transit-key", action="store_true", help="rotate the Vault transit key first"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = Tenant.objects.order_by("slug")
        if options.get("tenant"):
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"no tenant with slug {options['tenant']!r}")
        try:
            if options["rotate_transit_key"]:
                if keys.configured_wrapper() != "vault":
                    raise CommandError("--rotate-transit-key needs TRADEWIND_KEY_WRAPPER=vault")
                version = vault.transit_rotate()
                self.stdout.write(f"Vault transit key is now at version {version}.")
            for tenant in tenants:
                result = rotate_tenant_keys(tenant=tenant, actor=Actor.system("rotate-keys"))
                self.stdout.write(
                    f"{tenant.slug}: re-wrapped {result.rewrapped} data key(s), re-encrypted "
                    f"{result.reencrypted} value row(s), retired {result.retired} old data key(s)."
                )
        except (DomainError, keys.UndecryptableSecret) as error:
            raise CommandError(str(error)) from error
