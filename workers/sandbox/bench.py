"""Benchmarks of the sandbox (not tests): parsing throughput and task start-up latency, on generated files."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workers.sandbox.api import parse_files, prestart, run_task
from workers.sandbox.server import sample_ti_info

BENCH_TENANT = 999_000

DAG_TEMPLATE = """\
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator


def _work(**context):
    return context["ds"]


with DAG(
    dag_id="bench_{index}",
    start_date=datetime(2024, 1, 1),
    schedule="@daily",
    catchup=False,
    default_args={{"owner": "bench", "retries": 1, "retry_delay": timedelta(minutes=5)}},
    tags=["bench"],
) as dag:
    previous = EmptyOperator(task_id="start")
    for number in range({n_tasks} - 1):
        if number % 3 == 0:
            task = BashOperator(task_id=f"bash_{{number}}", bash_command="echo {{{{ ds }}}}")
        elif number % 3 == 1:
            task = PythonOperator(task_id=f"python_{{number}}", python_callable=_work)
        else:
            task = EmptyOperator(task_id=f"empty_{{number}}")
        previous >> task
        previous = task
"""

STARTUP_DAG = """\
import time
from datetime import datetime

from airflow import DAG
from airflow.operators.python import PythonOperator


def first_line():
    return time.monotonic()


with DAG(dag_id="startup", start_date=datetime(2024, 1, 1), schedule=None):
    PythonOperator(task_id="first_line", python_callable=first_line)
"""


@contextmanager
def _bundle() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="tradewind-bench-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


def bench_parse(n_files: int = 200, n_tasks: int = 20, parallelism: int | None = None) -> dict[str, Any]:
    """Generate `n_files` DAG files of `n_tasks` tasks each and parse them all in the sandbox (the fork
    server started beforehand); return the wall time and per-file figures."""
    started = time.monotonic()
    preload_s = prestart()
    server_start_s = time.monotonic() - started
    with _bundle() as root:
        files = []
        for index in range(n_files):
            name = f"bench_{index:04d}.py"
            (root / name).write_text(DAG_TEMPLATE.format(index=index, n_tasks=n_tasks))
            files.append(name)
        began = time.monotonic()
        results = parse_files(root, files, tenant_id=BENCH_TENANT, parallelism=parallelism)
        total_s = time.monotonic() - began
    durations = [r["duration_ms"] / 1000 for r in results.values()]
    errors = [r["error"] for r in results.values() if r["error"]]
    return {
        "files": n_files,
        "tasks_per_file": n_tasks,
        "total_s": round(total_s, 3),
        "files_per_s": round(n_files / total_s, 1),
        "per_file_ms_median": _ms(durations, 0.5),
        "per_file_ms_p95": _ms(durations, 0.95),
        "dags": sum(len(r["dags"]) for r in results.values()),
        "tasks": sum(len(d.get("tasks", [])) for r in results.values() for d in r["dags"]),
        "errors": len(errors),
        "first_error": errors[0].splitlines()[0] if errors else None,
        "server_start_s": round(server_start_s, 3),
        "server_preload_s": None if preload_s is None else round(preload_s, 3),
    }


def bench_task_startup(n: int = 50) -> dict[str, Any]:
    """Run a one-line PythonOperator `n` times; return the time from calling run_task to the operator's first
    line (median, p95) and to the outcome."""
    prestart()
    pushed: dict[str, Any] = {}

    def handler(op: str, kwargs: dict[str, Any]) -> Any:
        if op == "xcom_push":
            pushed[kwargs["key"]] = kwargs["value"]
            return None
        if op == "xcom_pull":
            return []
        return None

    startup, total, failures = [], [], []
    with _bundle() as root:
        (root / "startup.py").write_text(textwrap.dedent(STARTUP_DAG))
        for attempt in range(n):
            pushed.clear()
            began = time.monotonic()
            outcome = run_task(
                root,
                "startup.py",
                sample_ti_info("startup", "first_line", run_id=f"manual__bench_{attempt}"),
                tenant_id=BENCH_TENANT,
                handler=handler,
                output=lambda _data: None,
                timeout_s=60,
            )
            ended = time.monotonic()
            first_line = pushed.get("return_value")
            if outcome.get("state") != "success" or not isinstance(first_line, float):
                failures.append(outcome.get("error"))
                continue
            startup.append(first_line - began)
            total.append(ended - began)
    return {
        "runs": n,
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "startup_ms_median": _ms(startup, 0.5) if startup else None,
        "startup_ms_p95": _ms(startup, 0.95) if startup else None,
        "startup_ms_mean": round(statistics.mean(startup) * 1000, 2) if startup else None,
        "total_ms_median": _ms(total, 0.5) if total else None,
    }


if __name__ == "__main__":
    print(bench_parse())
    print(bench_task_startup())
