"""The Celery application: task execution on workers consuming per-tenant queues.

Messages carry only (tenant id, task instance id, try number); acks are late, prefetch is one and a task
whose worker dies is rejected back to the queue, so a killed worker loses no task instance.
"""

from __future__ import annotations

import os

from celery import Celery

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
    task_default_queue="tenant.default.default",
)
app.autodiscover_tasks(["workers"])

RUN_TASK_INSTANCE = "workers.run_task_instance"
RUN_DAG_CALLBACKS = "workers.run_dag_callbacks"


def queue_name(tenant_slug: str, queue: str = "default") -> str:
    """The Celery queue of a tenant's tasks of one Airflow queue."""
    return f"tenant.{tenant_slug}.{queue}"
