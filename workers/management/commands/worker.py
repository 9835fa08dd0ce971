"""`manage.py worker`: a Celery worker consuming tenants' queues."""

from __future__ import annotations

import logging
import os

from celery import bootsteps
from celery.signals import worker_init, worker_process_init
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from tenants.models import Tenant

logger = logging.getLogger(__name__)

POOLS = ("threads", "prefork", "solo")


class Command(BaseCommand):
    help = (
        "Start a Celery worker on the queues tenant.<slug>.<queue> of the given tenants (a dedicated worker) "
        "or of every active tenant (a shared worker, which also picks up tenants created later), for the "
        "given Airflow queues (default: 'default')."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenants", help="comma-separated tenant slugs: a dedicated worker")
        parser.add_argument("--queues", default="default", help="comma-separated Airflow queue names")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help="task instances run at once (default: TRADEWIND_PARALLELISM)",
        )
        parser.add_argument(
            "--pool",
            choices=POOLS,
            default="threads",
            help="Celery pool; tasks run in sandboxed child processes either way, so the default 'threads' "
            "shares one warm sandbox fork server, and its threads connect to the database before the first task",
        )
        parser.add_argument("--hostname", default=None, help="Celery node name (default: unique per process)")
        parser.add_argument("--loglevel", default="INFO")
        parser.add_argument(
            "--queue-refresh",
            type=float,
            default=10.0,
            help="a shared worker looks for new (and suspended) tenants this often, in seconds; 0: never",
        )

    def handle(self, *args: object, **options: object) -> None:
        from tradewind.celery import app

        if not settings.CELERY_BROKER_URL:
            raise CommandError("CELERY_BROKER_URL is not set: without a broker the local executor runs tasks")
        airflow_queues = _split(options["queues"]) or ["default"]
        slugs = _split(options["tenants"])
        if slugs:
            unknown = set(slugs) - set(Tenant.objects.filter(slug__in=slugs).values_list("slug", flat=True))
            if unknown:
                raise CommandError(f"unknown tenant(s): {', '.join(sorted(unknown))}")
            queues = tenant_queues(slugs, airflow_queues)
        else:
            queues = tenant_queues(_active_slugs(), airflow_queues) or [app.conf.task_default_queue]
            if options["queue_refresh"] > 0:
                app.conf.tradewind_airflow_queues = airflow_queues
                app.conf.tradewind_queue_refresh = options["queue_refresh"]
                app.steps["consumer"].add(TenantQueues)
        pool = options["pool"]
        concurrency = options["concurrency"] or settings.TRADEWIND_PARALLELISM
        hostname = options["hostname"] or f"{'-'.join(slugs) or 'shared'}-{os.getpid()}@%h"
        (worker_process_init if pool == "prefork" else worker_init).connect(_warm_up, weak=False)
        if pool == "threads":  # Celery's way to a pool class of one's own: the worker_pool setting, no --pool
            app.conf.worker_pool = "workers.pool:WarmThreadPool"
        argv = [
            "worker",
            f"--queues={','.join(queues)}",
            f"--loglevel={options['loglevel']}",
            *([] if pool == "threads" else [f"--pool={pool}"]),
            f"--concurrency={1 if pool == 'solo' else concurrency}",
            f"--hostname={hostname}",
            # No worker-to-worker chatter: nothing here uses it, and mingle delays the start by a second.
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ]
        self.stdout.write(f"Worker consuming {', '.join(queues)}")
        self.stdout.flush()
        app.worker_main(argv=argv)


def tenant_queues(slugs: list[str], airflow_queues: list[str]) -> list[str]:
    """The Celery queues of these tenants' tasks of these Airflow queues."""
    from tradewind.celery import queue_name

    return [queue_name(slug, queue) for slug in slugs for queue in airflow_queues]


def _active_slugs() -> list[str]:
    return list(
        Tenant.objects.filter(status=Tenant.Status.ACTIVE).order_by("pk").values_list("slug", flat=True)
    )


def _warm_up(**_: object) -> None:
    """Before the first task rather than during it: import the task runner (a quarter of a second of
    imports on a small machine) and start the sandbox's fork server."""
    from workers import runner, sandbox  # noqa: F401

    sandbox.prestart()


class TenantQueues(bootsteps.StartStopStep):
    """A shared worker's queues follow the tenants: every `tradewind_queue_refresh` seconds it starts
    consuming the queues of tenants created since, and stops consuming those of suspended or deleted
    tenants."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: object, **kwargs: object) -> None:
        super().__init__(parent, **kwargs)
        self.entry = None

    def start(self, consumer) -> None:
        interval = consumer.app.conf.tradewind_queue_refresh
        self.entry = consumer.timer.call_repeatedly(interval, self.refresh, (consumer,), priority=10)

    def stop(self, consumer) -> None:
        if self.entry is not None:
            self.entry.cancel()
            self.entry = None

    def refresh(self, consumer) -> None:
        """Match the consumed tenant queues to the active tenants (runs in the consumer's event loop)."""
        from tradewind.celery import QUEUE_PREFIX

        airflow_queues = consumer.app.conf.tradewind_airflow_queues
        try:
            close_old_connections()
            wanted = set(tenant_queues(_active_slugs(), airflow_queues))
        except Exception:  # the database is away: keep the queues we have
            logger.warning("could not read the tenants; keeping the current queues", exc_info=True)
            return
        current = {queue.name for queue in consumer.task_consumer.queues}
        for name in sorted(wanted - current):
            consumer.add_task_queue(name)
        ours = {name for name in current if name.startswith(QUEUE_PREFIX)}
        for name in sorted(ours - wanted):
            consumer.cancel_task_queue(name)


def _split(value: object) -> list[str]:
    return [item.strip() for item in str(value or "").split(",") if item.strip()]
