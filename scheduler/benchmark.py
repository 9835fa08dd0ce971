"""`manage.py bench`: run a workload through the real scheduler and executor and measure it.

A bench tenant is created, the workload deployed as a DAG repository, the real scheduler started as its
own process (with the local executor, or with Celery workers as separate processes), one run triggered and
awaited; the figures come from the database's timestamps, memory from the processes' /proc entries.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

ROOT = Path(settings.BASE_DIR)

HEADER = """\
import pendulum
from airflow import DAG
from airflow.operators.python import PythonOperator
from airflow.operators.bash import BashOperator


def noop():
    return None

"""


def _chain_100() -> dict[str, str]:
    body = HEADER + textwrap.dedent(
        """\
        with DAG("chain_100", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False):
            previous = None
            for i in range(100):
                task = PythonOperator(task_id=f"t{i:03d}", python_callable=noop)
                if previous is not None:
                    previous >> task
                previous = task
        """
    )
    return {"chain_100.py": body}


def _fanout_500() -> dict[str, str]:
    body = HEADER + textwrap.dedent(
        """\
        with DAG("fanout_500", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
                 catchup=False, max_active_tasks=1000):
            start = PythonOperator(task_id="start", python_callable=noop)
            end = PythonOperator(task_id="end", python_callable=noop)
            middle = [PythonOperator(task_id=f"m{i:03d}", python_callable=noop) for i in range(500)]
            start >> middle >> end
        """
    )
    return {"fanout_500.py": body}


def _bash_50() -> dict[str, str]:
    body = HEADER + textwrap.dedent(
        """\
        with DAG("bash_50", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
                 catchup=False, max_active_tasks=100):
            [BashOperator(task_id=f"b{i:02d}", bash_command="true") for i in range(50)]
        """
    )
    return {"bash_50.py": body}


def parse_files(n_files: int = 200, n_tasks: int = 20) -> dict[str, str]:
    """n_files DAG files of n_tasks chained PythonOperator tasks each."""
    files = {}
    for f in range(n_files):
        files[f"dag_{f:03d}.py"] = HEADER + textwrap.dedent(
            f"""\
            with DAG("parse_{f:03d}", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
                     catchup=False, tags=["bench"]):
                tasks = [PythonOperator(task_id=f"t{{i:02d}}", python_callable=noop) for i in range({n_tasks})]
                for upstream, downstream in zip(tasks, tasks[1:]):
                    upstream >> downstream
            """
        )
    return files


RUN_WORKLOADS: dict[str, Callable[[], dict[str, str]]] = {
    "chain_100": _chain_100,
    "fanout_500": _fanout_500,
    "bash_50": _bash_50,
}
WORKLOADS = [*RUN_WORKLOADS, "parse_200", "task_startup"]


SAMPLE_INTERVAL_S = 0.5
# The run's end comes from its end_date, not from when the bench notices: polling rarely costs no accuracy.
POLL_INTERVAL_S = 0.2
READY_TIMEOUT_S = 120.0


class MemorySampler:
    """Samples the peak resident memory (PSS where the kernel gives it) of process trees."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = sum(tree_memory_kb(pid) for pid in self.roots) / 1024
            self.peak_mb = max(self.peak_mb, total)
            # Reading smaps_rollup walks every page of every process of the trees: often enough to see the
            # plateau, rarely enough not to slow down what is measured.
            self._stop.wait(SAMPLE_INTERVAL_S)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def tree_memory_kb(pid: int) -> int:
    """PSS (or RSS) of a process and all its descendants, in kB."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += _process_memory_kb(current)
        stack += _children(current)
    return total


def cpu_by_role(roots: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds used so far by each role's process trees, with the sandbox's processes (a fork server,
    its templates and every task's process, counted once reaped by their parent) as a role of their own.
    PostgreSQL and Redis are not counted."""
    used: dict[str, float] = {"sandbox": 0.0}
    for role, pids in roots.items():
        used[role] = 0.0
        for root in pids:
            stack = [(root, False)]
            while stack:
                pid, in_sandbox = stack.pop()
                own, reaped, is_server = _process_cpu_s(pid)
                in_sandbox = in_sandbox or is_server
                used["sandbox" if in_sandbox else role] += own
                # What a process's exited children used shows once it has reaped them: the fork server
                # and templates reap task processes; a worker reaps a fork server only when it stops.
                used["sandbox" if in_sandbox or pid != root else role] += reaped
                stack += [(child, in_sandbox) for child in _children(pid)]
    return used


def _process_cpu_s(pid: int) -> tuple[float, float, bool]:
    """(CPU seconds of the process, of its reaped children, whether it is a sandbox fork server)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return 0.0, 0.0, False
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3, utime field 14
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    tick = os.sysconf("SC_CLK_TCK")
    return (utime + stime) / tick, (cutime + cstime) / tick, b"workers.sandbox.server" in cmdline


def _process_memory_kb(pid: int) -> int:
    for path, key in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return int(line.split()[1])
        except OSError:
            continue
    return 0


@dataclass
class BenchProcesses:
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen]
    worker_names: list[str]

    def wait_until_ready(self, tenant_id: int, timeout_s: float) -> None:
        """Until the scheduler serves the tenant and every worker answers a ping: the clock measures the
        running engine, not how long its processes take to start."""
        from scheduler import leases

        deadline = time.monotonic() + timeout_s
        pending = list(self.worker_names)
        while not leases.serving(tenant_id) or pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the scheduler and workers were not ready within {timeout_s:.0f} s")
            if any(process.poll() is not None for process in [self.scheduler, *self.workers]):
                raise RuntimeError("a scheduler or worker process exited; see its log")
            if pending:
                from tradewind.celery import app

                answered = app.control.ping(destination=pending, timeout=0.2)
                pending = [name for name in pending if not any(name in reply for reply in answered)]
            else:
                time.sleep(POLL_INTERVAL_S)

    def stop(self) -> None:
        for process in [self.scheduler, *self.workers]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [self.scheduler, *self.workers]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_processes(tenant_slug: str, executor: str, workers: int, log_dir: Path) -> BenchProcesses:
    """The real scheduler process, and with Celery the worker processes, as separate OS processes."""
    env = dict(os.environ)
    # As deployed: without Django's debug mode, which formats and keeps every SQL query of every process.
    env.setdefault("TRADEWIND_DEBUG", "false")
    if executor == "local":
        env.pop("CELERY_BROKER_URL", None)
    elif not settings.CELERY_BROKER_URL:
        raise RuntimeError("--executor celery needs CELERY_BROKER_URL")
    worker_processes, worker_names = [], []
    if executor == "celery":
        concurrency = max(1, settings.TRADEWIND_PARALLELISM // max(workers, 1))
        for n in range(workers):
            worker_names.append(f"bench{n}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}")
            worker_processes.append(
                _spawn(
                    [
                        "worker",
                        "--tenants",
                        tenant_slug,
                        "--concurrency",
                        str(concurrency),
                        "--hostname",
                        worker_names[-1],
                        "--loglevel",
                        "WARNING",
                    ],
                    env,
                    log_dir / f"worker{n}.log",
                )
            )
    scheduler = _spawn(["scheduler"], env, log_dir / "scheduler.log")
    return BenchProcesses(scheduler=scheduler, workers=worker_processes, worker_names=worker_names)


def hop_latencies_ms(run) -> list[float]:
    """For every task with upstreams: its start minus the latest end of its upstream tasks, in ms."""
    tasks = {task["task_id"]: task for task in run.dag_version.serialized["tasks"]}
    ends: dict[str, datetime] = {}
    starts: dict[str, datetime] = {}
    for ti in run.task_instances.all():
        if ti.end_date:
            ends[ti.task_id] = max(ends.get(ti.task_id, ti.end_date), ti.end_date)
        if ti.start_date:
            starts[ti.task_id] = min(starts.get(ti.task_id, ti.start_date), ti.start_date)
    hops = []
    for task_id, started in starts.items():
        upstream_ends = [ends[u] for u in tasks[task_id].get("upstream_task_ids", []) if u in ends]
        if upstream_ends:
            hops.append((started - max(upstream_ends)).total_seconds() * 1000)
    return hops


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 1)


def run_bench(
    *, workload: str | None, dag_file: Path | None, executor: str, workers: int, timeout_s: float = 900
) -> dict[str, object]:
    """Deploy, run and measure one workload; always removes the bench tenant."""
    if workload == "task_startup":
        from workers.sandbox.bench import bench_task_startup

        return {"workload": workload, **bench_task_startup(n=100)}
    from scheduler import bundles, services
    from scheduler.models import Dag, DagRun
    from scheduler.states import RUN_FINISHED, RunType
    from scheduler.wakeup import notify
    from tenants import services as tenant_services
    from tradewind.accounts.actors import Actor

    slug = f"bench-{uuid.uuid4().hex[:8]}"
    tenant = tenant_services.create_tenant(
        slug=slug,
        name="Benchmark",
        max_active_tasks=10_000,
        max_active_runs=100,
        max_dags=10_000,
        max_bundle_bytes=1 << 30,
    )
    actor = Actor.system("bench")
    try:
        with tempfile.TemporaryDirectory(prefix="tradewind-bench-") as tmp:
            source = Path(tmp) / "repo"
            source.mkdir()
            if workload == "parse_200":
                return _bench_parse(tenant, actor, source)
            files = {dag_file.name: dag_file.read_text()} if dag_file else RUN_WORKLOADS[workload]()
            for name, text in files.items():
                (source / name).write_text(text)
            result = bundles.upload_bundle(tenant=tenant, actor=actor, source=source, bundle_name="bench")
            if result.import_errors or len(result.dags) != 1:
                raise RuntimeError(
                    f"the workload must define exactly one DAG: {result.import_errors or result.dags}"
                )
            dag = Dag.objects.get(tenant=tenant, dag_id=result.dags[0])
            Dag.objects.filter(pk=dag.pk).update(is_paused=False)
            processes = start_processes(slug, executor, workers, Path(tmp))
            try:
                processes.wait_until_ready(tenant.pk, timeout_s=READY_TIMEOUT_S)
                roots = {"scheduler": [processes.scheduler.pid], "worker": [p.pid for p in processes.workers]}
                with (
                    MemorySampler([processes.scheduler.pid]) as sched_mem,
                    MemorySampler([p.pid for p in processes.workers]) as worker_mem,
                ):
                    cpu_before = cpu_by_role(roots)
                    triggered = timezone.now()
                    run = services.create_dag_run(
                        tenant=tenant,
                        dag=dag,
                        actor=actor,
                        run_type=RunType.MANUAL,
                        logical_date=triggered,
                        data_interval=(triggered, triggered),
                    )
                    notify(tenant.pk)
                    deadline = time.monotonic() + timeout_s
                    while DagRun.objects.get(pk=run.pk).state not in RUN_FINISHED:
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"the run did not finish within {timeout_s:.0f} s")
                        if processes.scheduler.poll() is not None:
                            raise RuntimeError("the scheduler process exited; see its log")
                        time.sleep(POLL_INTERVAL_S)
                    cpu_after = cpu_by_role(roots)
            finally:
                processes.stop()
            run = DagRun.objects.get(pk=run.pk)
            tis = list(run.task_instances.all())
            wall = (run.end_date - triggered).total_seconds()
            hops = hop_latencies_ms(run)
            return {
                "workload": workload or dag_file.name,
                "executor": executor,
                "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
                "state": run.state,
                "wall_s": round(wall, 3),
                "tasks": len(tis),
                "tasks_per_s": round(len(tis) / wall, 1) if wall > 0 else None,
                "hop_p50_ms": _percentile(hops, 0.5),
                "hop_p95_ms": _percentile(hops, 0.95),
                "scheduler_rss_mb": round(sched_mem.peak_mb, 1),
                "worker_rss_mb": round(worker_mem.peak_mb, 1) if processes.workers else None,
                # Until the bench saw the run finish (up to POLL_INTERVAL_S after it did).
                "cpu_ms_per_task": {
                    role: round((cpu_after[role] - cpu_before[role]) * 1000 / max(len(tis), 1), 2)
                    for role in cpu_after
                    if role != "worker" or processes.workers
                },
            }
    finally:
        tenant.delete()


def _bench_parse(tenant, actor, source: Path) -> dict[str, object]:
    from scheduler import bundles

    for name, text in parse_files().items():
        (source / name).write_text(text)
    started = time.perf_counter()
    cold = bundles.upload_bundle(tenant=tenant, actor=actor, source=source, bundle_name="bench")
    cold_s = time.perf_counter() - started
    from workers.sandbox.bench import bench_parse

    sandbox_only = bench_parse(n_files=200, n_tasks=20)  # the sandbox alone, without storing anything
    changed = source / "dag_000.py"
    changed.write_text(changed.read_text() + "\n# changed\n")
    started = time.perf_counter()
    bundles.upload_bundle(tenant=tenant, actor=actor, source=source, bundle_name="bench")
    reparse_s = time.perf_counter() - started
    return {
        "workload": "parse_200",
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "files": 200,
        "dags": len(cold.dags),
        "import_errors": len(cold.import_errors),
        "cold_parse_s": round(cold_s, 3),
        "reparse_one_changed_s": round(reparse_s, 3),
        "sandbox_parse_s": sandbox_only["total_s"],
        "sandbox_per_file_ms_median": sandbox_only["per_file_ms_median"],
    }
