"""The Celery application: task execution on workers consuming per-tenant queues.

Messages carry only (tenant id, task instance id, try number); acks are late, prefetch is one and a task
whose worker dies is rejected back to the queue, so a killed worker loses no task instance.
"""

from __future__ import annotations

import os
import sys

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradewind.settings")

app = Celery("tradewind")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    # Nothing is ever sent here: every message names its tenant's queue. A worker with no tenant to serve
    # yet listens on it while it waits for tenants.
    task_default_queue="tradewind.unrouted",
)
# Celery's Django fixup closes the database connection before and after every task unless this is set, so
# that each task would open a new connection; we keep connections (CONN_MAX_AGE) and, before each task, drop
# only broken or obsolete ones (workers.executors.check_connections).
app.conf.update(CELERY_DB_REUSE_MAX=sys.maxsize)
app.autodiscover_tasks(["workers"])


@task_prerun.connect
def _drop_unusable_connections(**_: object) -> None:
    from workers.executors import check_connections

    check_connections()


RUN_TASK_INSTANCE = "workers.run_task_instance"
RUN_DAG_CALLBACKS = "workers.run_dag_callbacks"
QUEUE_PREFIX = "tenant."


def queue_name(tenant_slug: str, queue: str = "default") -> str:
    """The Celery queue of a tenant's tasks of one Airflow queue."""
    return f"{QUEUE_PREFIX}{tenant_slug}.{queue}"
