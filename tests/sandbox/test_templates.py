"""Templates: a task's child is forked from a process that imported its DAG file once (real processes)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from workers.sandbox import run_task, templates
from workers.sandbox.limits import Limits

from .conftest import FakePlatform, pid_alive, ti_info

TENANT = 23

# Each task returns (pid of the process that imported the file, its own pid, its parent's pid).
TEMPLATED = """
    import os
    from datetime import datetime

    from airflow import DAG
    from airflow.operators.python import PythonOperator

    IMPORTED_BY = os.getpid()
    print("imported at the top level")

    def where():
        return [IMPORTED_BY, os.getpid(), os.getppid()]

    with DAG("templated", start_date=datetime(2024, 1, 1), schedule=None):
        PythonOperator(task_id="where", python_callable=where)
"""

ASKS_AT_IMPORT = """
    import os
    from datetime import datetime

    from airflow import DAG
    from airflow.models import Variable
    from airflow.operators.python import PythonOperator

    IMPORTED_BY = os.getpid()
    try:
        COLOUR = Variable.get("colour")
    except Exception:
        COLOUR = "swallowed"

    def where():
        return [IMPORTED_BY, os.getpid(), COLOUR]

    with DAG("asks", start_date=datetime(2024, 1, 1), schedule=None):
        PythonOperator(task_id="where", python_callable=where)
"""

# Its task says whether its DAG's Jinja environment was there before the task asked for one.
ENVIRONMENT_READY = """
    from datetime import datetime

    from airflow import DAG
    from airflow.operators.python import PythonOperator
    from tradewind.sdk import templater

    def where(**context):
        return [templater._ENVIRONMENTS.get(context["dag"]) is not None]

    with DAG("ready", start_date=datetime(2024, 1, 1), schedule=None):
        PythonOperator(task_id="where", python_callable=where)
"""

STARTS_A_THREAD = """
    import os
    import threading
    import time
    from datetime import datetime

    from airflow import DAG
    from airflow.operators.python import PythonOperator

    IMPORTED_BY = os.getpid()
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()

    def where():
        return [IMPORTED_BY, os.getpid()]

    with DAG("threads", start_date=datetime(2024, 1, 1), schedule=None):
        PythonOperator(task_id="where", python_callable=where)
"""


@pytest.fixture(autouse=True)
def fresh_templates():
    templates.stop_all()
    yield
    templates.stop_all()


def run(bundle, file: str, dag_id: str, platform: FakePlatform | None = None) -> tuple[object, bytes]:
    platform = platform or FakePlatform()
    info = ti_info(dag_id, "where")
    output = bytearray()
    outcome = run_task(
        bundle.root,
        file,
        info,
        tenant_id=TENANT,
        handler=platform.handler_for(info),
        output=output.extend,
        timeout_s=30,
    )
    assert outcome["state"] == "success", outcome
    return platform.xcoms[(info["run_id"], "where", "return_value", -1)], bytes(output)


def template_of(bundle, file: str) -> templates.Template:
    found = templates.template_for(bundle.root, file, tenant_id=TENANT, limits=Limits())
    assert found is not None
    return found


def test_tasks_fork_from_one_import_of_their_file_each_in_a_process_of_its_own(bundle):
    file = bundle.write("templated.py", TEMPLATED)
    (imported_1, pid_1, parent_1), output_1 = run(bundle, file, "templated")
    (imported_2, pid_2, parent_2), output_2 = run(bundle, file, "templated")
    assert imported_1 == imported_2 == parent_1 == parent_2  # both forked by the process that imported
    assert len({pid_1, pid_2, imported_1}) == 3
    # What the import printed is in every task's output, as if each had imported the file itself.
    assert b"imported at the top level" in output_1 and b"imported at the top level" in output_2


def test_a_template_builds_its_dags_jinja_environments_before_forking_its_tasks(bundle):
    file = bundle.write("ready.py", ENVIRONMENT_READY)
    assert run(bundle, file, "ready")[0] == [True]


def test_a_file_that_asks_the_platform_while_imported_is_imported_by_every_task(bundle):
    file = bundle.write("asks.py", ASKS_AT_IMPORT)
    platform = FakePlatform({"colour": "blue"})
    (imported_1, pid_1, colour_1), _ = run(bundle, file, "asks", platform)
    platform.variables["colour"] = "green"
    (imported_2, pid_2, colour_2), _ = run(bundle, file, "asks", platform)
    # `except Exception` in the file did not hide the refusal: each task imported the file and read the
    # variable as it was then.
    assert (imported_1, imported_2) == (pid_1, pid_2)
    assert (colour_1, colour_2) == ("blue", "green")
    assert templates.template_for(bundle.root, file, tenant_id=TENANT, limits=Limits()) is None


def test_a_file_that_starts_threads_while_imported_is_not_templated(bundle):
    file = bundle.write("threads.py", STARTS_A_THREAD)
    imported, pid = run(bundle, file, "threads")[0]
    assert imported == pid
    assert templates.template_for(bundle.root, file, tenant_id=TENANT, limits=Limits()) is None


def test_a_killed_template_is_replaced_and_its_tasks_still_run(bundle):
    file = bundle.write("templated.py", TEMPLATED)
    (first, _pid, _parent), _ = run(bundle, file, "templated")
    killed = template_of(bundle, file)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    # Until this process has seen it die too: a task started in between still runs, imported by its child.
    while (pid_alive(first) or killed.alive) and time.monotonic() < deadline:
        time.sleep(0.05)
    (second, pid, parent), _ = run(bundle, file, "templated")
    assert second != first and parent == second != pid


def test_an_idle_template_is_stopped(bundle, monkeypatch):
    file = bundle.write("templated.py", TEMPLATED)
    (imported, _pid, _parent), _ = run(bundle, file, "templated")
    template = template_of(bundle, file)
    monkeypatch.setattr(templates, "TEMPLATE_IDLE_S", 0.0)
    templates._stop_idle()
    deadline = time.monotonic() + 10
    # Its process ends, then this process's reader sees the end of its socket.
    while (pid_alive(imported) or template.alive) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(imported) and not template.alive


SLOW_IMPORT = """
    import os
    import time
    from datetime import datetime

    from airflow import DAG
    from airflow.operators.python import PythonOperator

    IMPORTED_BY = os.getpid()
    time.sleep(1)

    def where():
        return [IMPORTED_BY, os.getpid()]

    with DAG("slow", start_date=datetime(2024, 1, 1), schedule=None):
        PythonOperator(task_id="where", python_callable=where)
"""


def test_a_file_slower_to_import_than_the_wait_is_imported_by_its_task(bundle, monkeypatch):
    monkeypatch.setattr(templates, "IMPORT_WAIT_S", 0.2)
    file = bundle.write("slow.py", SLOW_IMPORT)
    imported, pid = run(bundle, file, "slow")[0]
    assert imported == pid
    assert templates.template_for(bundle.root, file, tenant_id=TENANT, limits=Limits()) is None


def test_past_the_most_templates_the_least_recently_used_idle_one_is_stopped(bundle, monkeypatch):
    monkeypatch.setattr(templates, "MAX_TEMPLATES", 1)
    first = bundle.write("first.py", TEMPLATED)
    second = bundle.write("second.py", TEMPLATED.replace('"templated"', '"second"'))
    (imported_first, _pid, _parent), _ = run(bundle, first, "templated")
    (imported_second, _pid, _parent), _ = run(bundle, second, "second")
    deadline = time.monotonic() + 10
    while pid_alive(imported_first) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(imported_first) and pid_alive(imported_second)
