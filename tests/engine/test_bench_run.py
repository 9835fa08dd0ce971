"""`manage.py bench` runs a DAG file through a real scheduler and Celery worker of its own and reports figures
from the database; its tenant is gone afterwards."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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
    assert not Tenant.objects.filter(slug__startswith="bench-").exists()
