"""Run control against the real engine: DAG files uploaded and run by the real scheduler loop and task
runner (sandboxed children). `dags trigger --wait` waits for the scheduler; a running task that is cleared
is killed by its runner and runs again as a new try."""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from scheduler import services
from scheduler.models import Dag, DagRun, TaskInstance, TaskInstanceHistory
from scheduler.states import DagRunState, TIState
from tests.runcontrol.helpers import ACTOR

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DAGS = {
    "live.py": """
        import datetime, time
        from airflow.sdk import DAG, task

        with DAG("ok", schedule=None, start_date=datetime.datetime(2024, 1, 1)):
            @task
            def hello():
                return "hi"
            hello()

        with DAG("broken", schedule=None, start_date=datetime.datetime(2024, 1, 1)):
            @task
            def boom():
                raise ValueError("boom")
            boom()

        with DAG("slow", schedule=None, start_date=datetime.datetime(2024, 1, 1)):
            @task
            def nap(**context):
                if context["ti"].try_number == 1:
                    time.sleep(60)
                return context["ti"].try_number
            nap()
    """
}


def wait_for(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_trigger_wait_returns_when_the_scheduler_has_run_it(tenant, upload, running_scheduler) -> None:
    upload(tenant, DAGS)
    running_scheduler(tenant)
    out = io.StringIO()
    call_command("dags", "trigger", "--tenant", "acme", "ok", "--wait", "--timeout", "60", stdout=out)
    assert "finished: success" in out.getvalue()
    assert DagRun.objects.get(dag__dag_id="ok").state == DagRunState.SUCCESS
    with pytest.raises(CommandError, match="finished: failed") as caught:
        call_command("dags", "trigger", "--tenant", "acme", "broken", "--wait", "--timeout", "60", stdout=out)
    assert caught.value.returncode == 1


def test_clearing_a_running_task_kills_it_and_runs_it_again(tenant, upload, running_scheduler) -> None:
    upload(tenant, DAGS)
    dag = Dag.objects.get(tenant=tenant, dag_id="slow")
    run = services.trigger_run(tenant=tenant, actor=ACTOR, dag=dag)
    running_scheduler(tenant)
    nap = lambda: TaskInstance.objects.get(dag_run=run, task_id="nap")
    wait_for(lambda: nap().state == TIState.RUNNING and nap().pid is not None, what="the task to run")
    started = time.monotonic()
    (cleared,) = services.clear_task_instances(tenant=tenant, actor=ACTOR, run=run, task_ids=["nap"])
    assert cleared.state == TIState.RESTARTING
    wait_for(lambda: DagRun.objects.get(pk=run.pk).state == DagRunState.SUCCESS, what="the run to succeed")
    assert time.monotonic() - started < 30  # the first try (a 60 s nap) was killed, not waited for
    ti = nap()
    assert ti.state == TIState.SUCCESS and ti.try_number == 2
    first = TaskInstanceHistory.objects.get(task_instance=ti, try_number=1)
    assert first.state == TIState.FAILED and "terminated" in first.error
