"""Following a running task's log through the API: a real bundle, the real task runner and its sandboxed
child printing slowly, and a client reading by offset until the try is finished."""

from __future__ import annotations

import os
import textwrap
import threading
import time

import pytest
from django.db import connections
from django.utils import timezone

from scheduler import services
from scheduler.bundles import upload_bundle
from scheduler.models import Dag, TaskInstance
from scheduler.states import RunType
from tenants.roles import Role
from tests.api.helpers import ACTOR, api
from tradewind.secrets import services as secrets
from workers import runner

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DAG_FILE = """
import time
from datetime import datetime
from tradewind.sdk import DAG
from tradewind.sdk import Variable
from tradewind.sdk.operators.python import PythonOperator

def talk():
    print("using", Variable.get("api_password"), flush=True)
    for n in range(1, 4):
        print(f"line {n}", flush=True)
        time.sleep(1)
    print("done", flush=True)

with DAG("talky", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    PythonOperator(task_id="talk", python_callable=talk)
"""


def test_a_client_tails_a_running_tasks_log_until_it_finishes(tenant, api_for, storage):
    folder = storage / "repo"
    folder.mkdir()
    (folder / "talky.py").write_text(textwrap.dedent(DAG_FILE))
    os.chmod(folder, 0o755)
    os.chmod(folder / "talky.py", 0o644)
    assert upload_bundle(tenant=tenant, actor=ACTOR, source=folder).dags == ["talky"]
    secrets.set_variable(tenant=tenant, actor=ACTOR, key="api_password", value="hunter2-very-secret")
    run = services.create_dag_run(
        tenant=tenant,
        dag=Dag.objects.get(dag_id="talky"),
        actor=ACTOR,
        run_type=RunType.MANUAL,
        logical_date=timezone.now(),
        data_interval=None,
        run_id="tail",
    )
    (queued,) = services.queue_task_instances(services.schedule_run(run))

    def work() -> None:
        try:
            runner.run_task_instance(tenant_id=tenant.pk, ti_id=queued.pk, try_number=queued.try_number)
        finally:
            connections.close_all()  # the worker thread's own connection

    worker = threading.Thread(target=work)
    client = api_for(tenant, Role.VIEWER)
    url = api(tenant, "dags/talky/dagRuns/tail/taskInstances/talk/logs/1")
    worker.start()
    seen, offset, polls, unfinished_views = "", 0, 0, []
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, seen
            chunk = client.get(url, {"offset": offset}).json()
            assert chunk["next_offset"] == offset + len(chunk["content"].encode())
            seen, offset, polls = seen + chunk["content"], chunk["next_offset"], polls + 1
            if chunk["finished"]:
                break
            unfinished_views.append(seen)
            time.sleep(0.1)
    finally:
        worker.join(timeout=60)
    assert any("line 1" in view and "done" not in view for view in unfinished_views)  # read while it ran
    assert [line for line in seen.splitlines() if line.startswith("line")] == ["line 1", "line 2", "line 3"]
    assert "done" in seen and polls > 3
    assert "hunter2-very-secret" not in seen and "using ***" in seen  # masked when written, never unmasked
    assert TaskInstance.objects.get(pk=queued.pk).state == "success"
    assert client.get(url, {"offset": offset}).json() == {
        "content": "",
        "next_offset": offset,
        "finished": True,
    }
