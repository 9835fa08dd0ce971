"""`manage.py triggerer`: run the triggers of deferred tasks (HA-safe; run several)."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.models import Tenant
from workers.triggerer import DEFAULT_CAPACITY, Triggerer


class Command(BaseCommand):
    help = (
        "Run the triggerer: claim deferred task instances of the given tenants (default: every active tenant), "
        "run their triggers in sandboxed per-tenant processes, and resume the tasks when the triggers fire. "
        "Several triggerers can run at once; the triggers of one that dies are taken over by another."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenants", help="comma-separated tenant slugs (default: every active tenant)")
        parser.add_argument(
            "--capacity",
            type=int,
            default=DEFAULT_CAPACITY,
            help=f"the most triggers this triggerer runs at once (default {DEFAULT_CAPACITY})",
        )

    def handle(self, *args: object, tenants: str | None, capacity: int, **options: object) -> None:
        if capacity < 1:
            raise CommandError("--capacity must be at least 1")
        tenant_ids = None
        if tenants:
            slugs = [slug.strip() for slug in tenants.split(",") if slug.strip()]
            found = dict(Tenant.objects.filter(slug__in=slugs).values_list("slug", "pk"))
            unknown = sorted(set(slugs) - set(found))
            if unknown:
                raise CommandError(f"unknown tenant(s): {', '.join(unknown)}")
            tenant_ids = [found[slug] for slug in slugs]
        triggerer = Triggerer(tenant_ids=tenant_ids, capacity=capacity)
        stop = threading.Event()

        def request_stop(*_: object) -> None:
            stop.set()
            triggerer.wake()

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, request_stop)
        self.stdout.write(f"Triggerer {triggerer.owner} running (capacity {capacity})")
        self.stdout.flush()
        triggerer.run(stop)
