from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import services
from tradewind.errors import DomainError


class Command(BaseCommand):
    help = "Create a tenant (a team with its own DAGs, runs, secrets and members)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="URL name, e.g. data-eng")
        parser.add_argument("--name", help="display name (default: the slug)")
        for quota in ("max_active_tasks", "max_active_runs", "max_dags", "max_bundle_bytes"):
            parser.add_argument(f"--{quota.replace('_', '-')}", dest=quota, type=int)

    def handle(self, *args: object, **options: object) -> None:
        quotas = {
            name: options[name]
            for name in ("max_active_tasks", "max_active_runs", "max_dags", "max_bundle_bytes")
            if options[name] is not None
        }
        try:
            tenant = services.create_tenant(slug=options["slug"], name=options["name"], **quotas)
        except DomainError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Created tenant {tenant.slug!r} ({tenant.name}).")
