"""`manage.py scheduler`: the scheduler supervisor (HA-safe; run several)."""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand, CommandParser

from scheduler.supervisor import Supervisor


class Command(BaseCommand):
    help = (
        "Run the scheduler: one process per tenant (or per group of tenants), each owning its tenants "
        "through a lease, so several schedulers can run at once and take over from a dead one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--tenants-per-process", type=int, default=1, help="group small tenants into one process"
        )
        parser.add_argument("--max-tenants", type=int, default=None, help="hold at most this many tenants")

    def handle(
        self, *args: object, tenants_per_process: int, max_tenants: int | None, **options: object
    ) -> None:
        supervisor = Supervisor(tenants_per_process=tenants_per_process, max_tenants=max_tenants)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: supervisor.stop.set())
        self.stdout.write(f"Scheduler supervisor {supervisor.owner} running")
        self.stdout.flush()
        supervisor.run()
