"""`manage.py bench` runs a DAG file through a real scheduler and Celery worker of its own and reports figures
from the database; its tenant is gone afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from scheduler.benchmark import cpu_by_role
from tenants.models import Tenant

from .conftest import PLATFORM_ROOT, dag_file

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
]

THREE_STEPS = dag_file(
    """
    from airflow.operators.bash import BashOperator

    with DAG("three_steps", schedule=None, start_date=START, catchup=False):
        a = PythonOperator(task_id="a", python_callable=lambda: 1)
        b = BashOperator(task_id="b", bash_command="true")
        c = PythonOperator(task_id="c", python_callable=lambda: 3)
        a >> b >> c
    """
)


def test_bench_runs_a_dag_file_on_celery_once_its_processes_are_ready(processes, data_dir, tmp_path):
    path = tmp_path / "three_steps.py"
    path.write_text(THREE_STEPS)
    done = subprocess.run(
        [sys.executable, str(PLATFORM_ROOT / "manage.py"), "bench", "--dag-file", str(path)]
        + ["--executor", "celery", "--json", "--timeout", "120"],
        cwd=PLATFORM_ROOT,
        env=processes.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert figures["workload"] == "three_steps.py"
    assert (figures["state"], figures["tasks"], figures["executor"]) == ("success", 3, "celery")
    # Measured from the trigger of a run the ready scheduler and worker take at once: three short tasks,
    # not the seconds the processes take to start.
    assert 0 < figures["wall_s"] < 10
    assert figures["hop_p50_ms"] is not None and figures["worker_rss_mb"] > 0
    assert set(figures["cpu_ms_per_task"]) == {"scheduler", "worker", "sandbox"}
    # The kernel counts CPU in 10 ms ticks: one role of three short tasks can use less than one.
    cpu = figures["cpu_ms_per_task"].values()
    assert all(ms >= 0 for ms in cpu) and sum(cpu) > 0
    assert not Tenant.objects.filter(slug__startswith="bench-").exists()


# Burns `seconds` of CPU; with "server" it names itself like a sandbox fork server and waits, else it exits.
BURN = textwrap.dedent(
    """
    import sys, time
    end = time.process_time() + float(sys.argv[1])
    while time.process_time() < end:
        pass
    if sys.argv[2] == "server":
        time.sleep(60)
    """
)
# A worker: a sandbox fork server that stays, and a helper process that it reaps (the server's name is
# spelled in two parts: this text is on the worker's own command line).
WORKER = textwrap.dedent(
    """
    import subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", sys.argv[1], "0.3", "server", "workers.sandbox." + "server"])
    subprocess.run([sys.executable, "-c", sys.argv[1], "0.3", "helper"])
    print("ready", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.django_db(transaction=False)
def test_cpu_by_role_counts_the_sandbox_apart_and_reaped_helpers_as_their_parent():
    worker = subprocess.Popen([sys.executable, "-c", WORKER, BURN], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip() == "ready"
        time.sleep(0.1)  # the fork server finishes its burn (it started first)
        used = cpu_by_role({"worker": [worker.pid]})
    finally:
        subprocess.run(["pkill", "-P", str(worker.pid)])
        worker.kill()
        worker.wait()
    assert used["sandbox"] >= 0.25  # the fork server's own
    assert used["worker"] >= 0.25  # the helper's, reaped by the worker
    assert used["worker"] < 0.6 and used["sandbox"] < 0.6  # each counted once
