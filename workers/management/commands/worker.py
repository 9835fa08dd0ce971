"""`manage.py worker`: a Celery worker consuming tenants' queues."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Start a Celery worker on the queues tenant.<slug>.<queue> of the given tenants (default: every "
        "active tenant, a shared worker) and Airflow queues (default: 'default')."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenants", help="comma-separated tenant slugs: a dedicated worker")
        parser.add_argument("--queues", default="default", help="comma-separated Airflow queue names")
        parser.add_argument("--concurrency", type=int, default=None, help="worker processes (default: CPUs)")
        parser.add_argument("--hostname", default=None, help="Celery node name")
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args: object, **options: object) -> None:
        from tradewind.celery import app, queue_name

        if not settings.CELERY_BROKER_URL:
            raise CommandError("CELERY_BROKER_URL is not set: without a broker the local executor runs tasks")
        slugs = _split(options["tenants"]) or list(
            Tenant.objects.filter(status=Tenant.Status.ACTIVE).values_list("slug", flat=True)
        )
        unknown = set(slugs) - set(Tenant.objects.filter(slug__in=slugs).values_list("slug", flat=True))
        if unknown:
            raise CommandError(f"unknown tenant(s): {', '.join(sorted(unknown))}")
        if not slugs:
            raise CommandError("there are no active tenants to serve yet")
        queues = [queue_name(slug, queue) for slug in slugs for queue in _split(options["queues"])]
        argv = ["worker", f"--queues={','.join(queues)}", f"--loglevel={options['loglevel']}"]
        if options["concurrency"]:
            argv.append(f"--concurrency={options['concurrency']}")
        if options["hostname"]:
            argv.append(f"--hostname={options['hostname']}")
        self.stdout.write(f"Worker consuming {', '.join(queues)}")
        self.stdout.flush()
        app.worker_main(argv=argv)


def _split(value: object) -> list[str]:
    return [item.strip() for item in str(value or "").split(",") if item.strip()]
