"""`manage.py scheduler`: the scheduler supervisor (HA-safe; run several)."""

from __future__ import annotations

import argparse
import signal

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scheduler.supervisor import Supervisor, run_tenant_process


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
        # A tenant process, started by the supervisor: not for people to use.
        parser.add_argument("--run-tenants", default=None, help=argparse.SUPPRESS)
        parser.add_argument("--owner", default=None, help=argparse.SUPPRESS)
        parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)

    def handle(
        self,
        *args: object,
        tenants_per_process: int,
        max_tenants: int | None,
        run_tenants: str | None,
        owner: str | None,
        parent_pid: int | None,
        **options: object,
    ) -> None:
        if run_tenants is not None:
            if not owner or parent_pid is None:
                raise CommandError(
                    "--run-tenants is started by the supervisor, with --owner and --parent-pid"
                )
            run_tenant_process([int(t) for t in run_tenants.split(",")], owner, parent_pid)
            return
        supervisor = Supervisor(tenants_per_process=tenants_per_process, max_tenants=max_tenants)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: supervisor.stop.set())
        self.stdout.write(f"Scheduler supervisor {supervisor.owner} running")
        self.stdout.flush()
        supervisor.run()
