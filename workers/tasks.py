"""Celery tasks: a worker runs one try of one task instance per message."""

from __future__ import annotations

from celery import shared_task

from tradewind.celery import RUN_DAG_CALLBACKS, RUN_TASK_INSTANCE


@shared_task(name=RUN_TASK_INSTANCE, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_task_instance(tenant_id: int, ti_id: int, try_number: int) -> None:
    """Run one try of one task instance; a duplicate or late delivery does nothing (the start is fenced)."""
    from workers import runner

    runner.run_task_instance(tenant_id=tenant_id, ti_id=ti_id, try_number=try_number)


@shared_task(name=RUN_DAG_CALLBACKS, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_dag_callbacks(tenant_id: int, dag_run_id: int) -> None:
    """Run a finished run's DAG-level on_success/on_failure callbacks in the sandbox."""
    from workers import runner

    runner.run_dag_callbacks(tenant_id=tenant_id, dag_run_id=dag_run_id)
