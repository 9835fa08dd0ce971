"""`manage.py standalone`: the whole platform in one process group, on embedded defaults."""

from __future__ import annotations

import os
import secrets

import uvicorn
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from scheduler.bundles import load_demo_bundle
from scheduler.supervisor import EmbeddedScheduler
from tenants import services
from tenants.models import Tenant
from tenants.roles import Role
from workers.triggerer import EmbeddedTriggerer

DEMO_TENANT = "demo"
ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Migrate, ensure a demo tenant and an admin user, and run the whole platform in one process: the web "
        "server (ASGI), the scheduler, the local executor and the triggerer."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: object, host: str, port: int, **options: object) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        password = ensure_demo()
        self._load_demo_dags()
        url = f"http://{host}:{port}/"
        self.stdout.write(f"Tradewind is running at {url}")
        if password:
            self.stdout.write(
                f"First start: log in as {ADMIN_USERNAME!r} with password {password!r} "
                f"(shown only now; change it with `manage.py changepassword {ADMIN_USERNAME}`)."
            )
        else:
            self.stdout.write(f"Log in as {ADMIN_USERNAME!r} with the password printed on the first start.")
        self.stdout.flush()
        scheduler = EmbeddedScheduler()  # every tenant, with the local executor
        triggerer = EmbeddedTriggerer()  # deferred tasks wait here, holding no executor slot
        scheduler.start()
        triggerer.start()
        try:
            config = uvicorn.Config("tradewind.asgi:application", host=host, port=port, lifespan="off")
            uvicorn.Server(config).run()
        finally:
            triggerer.shutdown()
            scheduler.shutdown()

    def _load_demo_dags(self) -> None:
        """First start only: the demo tenant gets our example DAG repository. A failure is reported but does
        not keep the platform from starting."""
        try:
            result = load_demo_bundle(Tenant.objects.get(slug=DEMO_TENANT))
        except Exception as exc:  # the demo is a convenience; the platform must come up regardless
            self.stderr.write(f"The example DAGs could not be loaded into the demo tenant: {exc}")
            return
        if result is not None:
            self.stdout.write(f"Loaded {len(result.dags)} example DAGs into the {DEMO_TENANT!r} tenant.")


@transaction.atomic
def ensure_demo() -> str | None:
    """Create the demo tenant and the admin user if missing; return the admin's password if new."""
    tenant = Tenant.objects.filter(slug=DEMO_TENANT).first()
    if tenant is None:
        tenant = services.create_tenant(slug=DEMO_TENANT, name="Demo")
    password = os.environ.get("TRADEWIND_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    user, created = services.ensure_user(username=ADMIN_USERNAME, password=password, is_superuser=True)
    services.add_member(tenant=tenant, user=user, role=Role.ADMIN)
    return password if created else None
