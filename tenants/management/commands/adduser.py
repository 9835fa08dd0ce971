import getpass
import os

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import services
from tenants.models import Tenant
from tenants.roles import Role
from tradewind.errors import DomainError


class Command(BaseCommand):
    help = (
        "Create a user, or take an existing one, and give them a role in a tenant. The password comes from "
        "--password, TRADEWIND_USER_PASSWORD, or a prompt; existing users keep theirs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--role", required=True, help="viewer, user, op or admin")
        parser.add_argument("--email", default="")
        parser.add_argument("--password", help="for a new user (visible in the process list: prefer the env)")

    def handle(self, *args: object, **options: str) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant with slug {options['tenant']!r} (create it with createtenant)")
        try:
            role = Role.from_name(options["role"])
        except ValueError as error:
            raise CommandError(str(error)) from error
        password = options["password"] or os.environ.get("TRADEWIND_USER_PASSWORD")
        try:
            user, created = services.ensure_user(
                username=options["username"], email=options["email"], password=password
            )
            if created and not password and options.get("interactive", True) and os.isatty(0):
                user.set_password(getpass.getpass(f"Password for {user.username}: "))
                user.save(update_fields=["password"])
            services.add_member(tenant=tenant, user=user, role=role)
        except DomainError as error:
            raise CommandError(str(error)) from error
        verb = "Created" if created else "Attached"
        self.stdout.write(f"{verb} user {user.username!r} as {role.label} in tenant {tenant.slug!r}.")
