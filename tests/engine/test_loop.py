"""The scheduling loop with the local executor, in this process: real DAG files, real sandboxed tasks, the
real `schedule_tenants` loop; what is asserted comes from the database's timestamps."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from scheduler import services
from scheduler.loop import queue_ready
from scheduler.models import DagRun, Pool, TaskInstance, TaskInstanceHistory
from scheduler.states import DagRunState, RunType, TIState
from tenants.models import Tenant
from workers.executors import LocalExecutor

from .conftest import dag_file, max_overlap, scheduling, tis_of, trigger, wait_for_run, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHAIN_AND_FANOUT = dag_file(
    """
    with DAG("chain", schedule=None, start_date=START):
        tasks = [PythonOperator(task_id=f"c{i}", python_callable=lambda: None) for i in range(5)]
        for upstream, downstream in zip(tasks, tasks[1:]):
            upstream >> downstream

    with DAG("fanout", schedule=None, start_date=START):
        first = PythonOperator(task_id="first", python_callable=lambda: None)
        last = PythonOperator(task_id="last", python_callable=lambda: None)
        first >> [PythonOperator(task_id=f"m{i}", python_callable=lambda: None) for i in range(6)] >> last
    """
)


def test_a_chain_and_a_fanout_run_to_success_through_the_loop(tenant, upload):
    upload(tenant, {"dags.py": CHAIN_AND_FANOUT})
    with scheduling([tenant.pk], LocalExecutor(parallelism=4)):
        chain, fanout = trigger(tenant, "chain"), trigger(tenant, "fanout")
        assert wait_for_run(chain).state == DagRunState.SUCCESS
        assert wait_for_run(fanout).state == DagRunState.SUCCESS
    chain_tis, fanout_tis = tis_of(chain), tis_of(fanout)
    for ti in [*chain_tis.values(), *fanout_tis.values()]:
        assert (ti.state, ti.try_number) == (TIState.SUCCESS, 1), ti
    for i in range(4):  # each link started after its upstream ended
        assert chain_tis[f"c{i + 1}"].start_date >= chain_tis[f"c{i}"].end_date
    middles = [fanout_tis[f"m{i}"] for i in range(6)]
    assert all(ti.start_date >= fanout_tis["first"].end_date for ti in middles)
    assert fanout_tis["last"].start_date >= max(ti.end_date for ti in middles)
    assert max_overlap(middles) > 1  # the fan-out ran in parallel


def test_pools_and_pool_slots_limit_concurrency(tenant, upload):
    Pool.objects.create(tenant=tenant, name="narrow", slots=2)
    upload(
        tenant,
        {
            "pools.py": dag_file(
                """
                def nap():
                    time.sleep(0.3)

                with DAG("pooled", schedule=None, start_date=START, max_active_tasks=16):
                    for i in range(5):
                        PythonOperator(task_id=f"p{i}", python_callable=nap, pool="narrow")
                    PythonOperator(
                        task_id="wide", python_callable=nap, pool="narrow", pool_slots=2
                    )
                """
            )
        },
    )
    with scheduling([tenant.pk], LocalExecutor(parallelism=6)):
        run = trigger(tenant, "pooled")
        assert wait_for_run(run).state == DagRunState.SUCCESS
    tis = tis_of(run)
    small = [tis[f"p{i}"] for i in range(5)]
    assert max_overlap(small) == 2  # both slots used, never more
    wide = tis["wide"]
    assert not [ti for ti in small if ti.start_date < wide.end_date and ti.end_date > wide.start_date], (
        "a task ran beside the one that takes both slots"
    )


def test_priority_weight_orders_what_is_queued_first(tenant, upload):
    upload(
        tenant,
        {
            "priorities.py": dag_file(
                """
                absolute = {"weight_rule": "absolute"}

                with DAG("weights", schedule=None, start_date=START, default_args=absolute):
                    for task_id, weight in [("low", 1), ("high", 10), ("mid", 5), ("lowest", 0)]:
                        PythonOperator(task_id=task_id, python_callable=lambda: None, priority_weight=weight)
                """
            )
        },
    )
    run = trigger(tenant, "weights")
    with scheduling([tenant.pk], LocalExecutor(parallelism=1)):  # one slot: the order shows
        assert wait_for_run(run).state == DagRunState.SUCCESS
    tis = sorted(tis_of(run).values(), key=lambda ti: ti.start_date)
    assert [ti.task_id for ti in tis] == ["high", "mid", "low", "lowest"]


FLOOD = dag_file(
    """
    with DAG("flood", schedule=None, start_date=START, max_active_tasks=50):
        for i in range(10):
            PythonOperator(task_id=f"f{i}", python_callable=lambda: time.sleep(0.4))
    """
)
SMALL = dag_file(
    """
    with DAG("small", schedule=None, start_date=START):
        PythonOperator(task_id="only", python_callable=lambda: None)
    """
)


def test_tenant_quotas_keep_a_flooding_tenant_from_starving_another(tenant, other_tenant, upload):
    Tenant.objects.filter(pk=tenant.pk).update(max_active_tasks=2)
    upload(tenant, {"flood.py": FLOOD})
    upload(other_tenant, {"small.py": SMALL})
    # Both tenants share one executor with three slots; the flooding tenant may hold two of them.
    with scheduling([tenant.pk, other_tenant.pk], LocalExecutor(parallelism=3)):
        flood = trigger(tenant, "flood")
        wait_until(
            lambda: TaskInstance.objects.filter(dag_run=flood, state=TIState.RUNNING).exists(),
            30,
            "the flood",
        )
        small = trigger(other_tenant, "small")
        assert wait_for_run(small, 30).state == DagRunState.SUCCESS
        assert wait_for_run(flood).state == DagRunState.SUCCESS
    flood_tis = list(tis_of(flood).values())
    assert max_overlap(flood_tis) == 2
    only = tis_of(small)["only"]
    assert only.start_date < sorted(ti.start_date for ti in flood_tis)[-3], (
        "the small tenant waited for the flood"
    )


def test_a_shared_executor_serves_tenants_in_turn(tenant, other_tenant, upload):
    upload(tenant, {"flood.py": FLOOD})
    upload(other_tenant, {"small.py": SMALL})
    # Neither tenant has a quota problem; the executor has one slot less than the flood wants at once.
    with scheduling([tenant.pk, other_tenant.pk], LocalExecutor(parallelism=2)):
        flood = trigger(tenant, "flood")
        wait_until(
            lambda: TaskInstance.objects.filter(dag_run=flood, state=TIState.RUNNING).count() == 2,
            30,
            "a full pool",
        )
        small = trigger(other_tenant, "small")
        assert wait_for_run(small, 30).state == DagRunState.SUCCESS
        assert wait_for_run(flood).state == DagRunState.SUCCESS
    only = tis_of(small)["only"]
    assert only.start_date < sorted(ti.start_date for ti in tis_of(flood).values())[-3]


def test_max_active_runs_of_the_dag_and_of_the_tenant(tenant, upload):
    upload(
        tenant,
        {
            "runs.py": dag_file(
                """
                with DAG("one_at_a_time", schedule=None, start_date=START, max_active_runs=1):
                    PythonOperator(task_id="work", python_callable=lambda: time.sleep(0.2))

                with DAG("two_at_a_time", schedule=None, start_date=START, max_active_runs=2):
                    PythonOperator(task_id="work", python_callable=lambda: time.sleep(0.5))
                """
            )
        },
    )
    Tenant.objects.filter(pk=tenant.pk).update(max_active_runs=3)
    with scheduling([tenant.pk], LocalExecutor(parallelism=8)):
        single = [trigger(tenant, "one_at_a_time") for _ in range(3)]
        double = [trigger(tenant, "two_at_a_time") for _ in range(4)]
        for run in single + double:
            assert wait_for_run(run).state == DagRunState.SUCCESS
    single = [DagRun.objects.get(pk=run.pk) for run in single]
    double = [DagRun.objects.get(pk=run.pk) for run in double]
    assert max_overlap(single) == 1
    assert max_overlap(double) == 2
    assert max_overlap(single + double) <= 3  # the tenant's quota


def test_a_producer_task_updating_an_asset_triggers_the_consumer_dag(tenant, upload):
    upload(
        tenant,
        {
            "assets.py": dag_file(
                """
                from airflow.datasets import Dataset

                orders = Dataset("s3://warehouse/orders")

                with DAG("producer", schedule=None, start_date=START):
                    PythonOperator(task_id="write", python_callable=lambda: None, outlets=[orders])

                with DAG("consumer", schedule=[orders], start_date=START):
                    PythonOperator(task_id="read", python_callable=lambda: None)
                """
            )
        },
    )
    with scheduling([tenant.pk], LocalExecutor(parallelism=2)):
        producer = trigger(tenant, "producer")
        assert wait_for_run(producer).state == DagRunState.SUCCESS
        wait_until(
            lambda: DagRun.objects.filter(dag__dag_id="consumer", dag__tenant=tenant).exists(),
            20,
            "the consumer run",
        )
        consumer = DagRun.objects.get(dag__dag_id="consumer", dag__tenant=tenant)
        assert wait_for_run(consumer).state == DagRunState.SUCCESS
    assert consumer.run_type == RunType.ASSET_TRIGGERED
    assert tis_of(consumer)["read"].state == TIState.SUCCESS


def test_dags_scheduled_on_an_alias_or_a_ref_are_triggered_by_the_assets_they_resolve_to(tenant, upload):
    upload(
        tenant,
        {
            "aliases.py": dag_file(
                """
                from airflow.sdk import Asset, AssetAlias

                named = Asset(name="named", uri="s3://warehouse/named")

                def add_through_alias(*, outlet_events):
                    outlet_events[AssetAlias("dynamic")].add(Asset("s3://warehouse/picked"), extra={"n": 1})

                def read_alias(*, triggering_asset_events):
                    (event,) = triggering_asset_events.for_asset_alias(name="dynamic")
                    assert (event.uri, event.extra) == ("s3://warehouse/picked", {"n": 1}), event

                def read_ref(*, triggering_asset_events):
                    (event,) = triggering_asset_events.for_asset(name="named")
                    assert event.uri == "s3://warehouse/named", event

                with DAG("producer", schedule=None, start_date=START):
                    PythonOperator(
                        task_id="write",
                        python_callable=add_through_alias,
                        outlets=[AssetAlias("dynamic"), named],
                    )

                with DAG("by_alias", schedule=[AssetAlias("dynamic")], start_date=START):
                    PythonOperator(task_id="read", python_callable=read_alias)

                with DAG("by_ref", schedule=[Asset.ref(name="named")], start_date=START):
                    PythonOperator(task_id="read", python_callable=read_ref)
                """
            )
        },
    )
    with scheduling([tenant.pk], LocalExecutor(parallelism=2)):
        assert wait_for_run(trigger(tenant, "producer")).state == DagRunState.SUCCESS
        consumers = DagRun.objects.filter(dag__tenant=tenant, dag__dag_id__in=["by_alias", "by_ref"])
        wait_until(lambda: consumers.count() == 2, 20, "both consumer runs")
        # Their tasks assert the triggering events they see: they fail when the event is not the right one.
        for run in consumers:
            assert wait_for_run(run).state == DagRunState.SUCCESS, run.dag.dag_id
            assert run.run_type == RunType.ASSET_TRIGGERED


def test_a_restarted_scheduler_resumes_exactly(tenant, upload):
    upload(
        tenant,
        {
            "steps.py": dag_file(
                """
                def nap():
                    time.sleep(0.2)

                with DAG("steps", schedule=None, start_date=START):
                    steps = [PythonOperator(task_id=f"s{i}", python_callable=nap) for i in range(5)]
                    for upstream, downstream in zip(steps, steps[1:]):
                        upstream >> downstream
                """
            )
        },
    )
    run = trigger(tenant, "steps")
    with scheduling([tenant.pk], LocalExecutor(parallelism=2)):
        wait_until(
            lambda: TaskInstance.objects.filter(dag_run=run, state=TIState.SUCCESS).count() >= 2,
            30,
            "two steps",
        )
    # The first scheduler is gone (its executor finished what it had started); nothing moves meanwhile.
    assert run_states_after_a_while(run) == run_states_after_a_while(run)
    with scheduling([tenant.pk], LocalExecutor(parallelism=2)):
        assert wait_for_run(run).state == DagRunState.SUCCESS
    tis = tis_of(run)
    assert {(ti.state, ti.try_number) for ti in tis.values()} == {(TIState.SUCCESS, 1)}
    assert not TaskInstanceHistory.objects.filter(task_instance__dag_run=run).exists()


def run_states_after_a_while(run: DagRun) -> dict[str, str]:
    time.sleep(0.3)
    return {key: ti.state for key, ti in tis_of(run).items()}


class _Collecting:
    """An executor that only records what it is sent."""

    def __init__(self) -> None:
        self.sent: list = []

    def submit(self, tasks) -> None:
        self.sent += tasks

    def submit_dag_callbacks(self, *_args) -> None:
        pass

    def free_slots(self) -> None:
        return None

    def shutdown(self, wait: bool = True) -> None:
        pass


def test_a_run_at_its_limit_does_not_hide_another_runs_ready_tasks(tenant, upload):
    """queue_ready reads only candidates that can be queued now: the capped run's 200 higher-priority
    tasks (far more than it reads beyond its room) are not even candidates once that run is at its limit."""
    upload(
        tenant,
        {
            "capped.py": dag_file(
                """
                absolute = {"weight_rule": "absolute"}

                with DAG("capped", schedule=None, start_date=START, max_active_tasks=1, default_args=absolute):
                    for i in range(200):
                        PythonOperator(task_id=f"c{i}", python_callable=lambda: None, priority_weight=10)

                with DAG("other", schedule=None, start_date=START, default_args=absolute):
                    PythonOperator(task_id="only", python_callable=lambda: None, priority_weight=1)
                """
            )
        },
    )
    capped, other = trigger(tenant, "capped"), trigger(tenant, "other")
    for run in (capped, other):
        assert services.evaluate_run(run)  # starts the run and schedules its tasks
    services.ensure_default_pool(tenant)
    executor = _Collecting()
    queue_ready(tenant, executor)
    queue_ready(tenant, executor)
    queued = TaskInstance.objects.filter(state=TIState.QUEUED)
    assert sorted(queued.values_list("dag_run__dag__dag_id", flat=True)) == ["capped", "other"]
    assert {task.ti_id for task in executor.sent} == set(queued.values_list("pk", flat=True))


def test_queueing_tells_whether_the_queued_task_instances_are_a_backlog(tenant, upload):
    """Queued task instances are a backlog when at least BACKLOG_MIN wait for a worker, twice as many as run."""
    upload(
        tenant,
        {
            "wide.py": dag_file(
                """
                with DAG("wide", schedule=None, start_date=START, max_active_tasks=100):
                    for i in range(40):
                        PythonOperator(task_id=f"w{i}", python_callable=lambda: None)

                with DAG("narrow", schedule=None, start_date=START):
                    for i in range(3):
                        PythonOperator(task_id=f"n{i}", python_callable=lambda: None)
                """
            )
        },
    )
    services.ensure_default_pool(tenant)
    Tenant.objects.filter(pk=tenant.pk).update(max_active_tasks=100)
    tenant.refresh_from_db()
    narrow = trigger(tenant, "narrow")
    assert services.evaluate_run(narrow)
    assert queue_ready(tenant, _Collecting()).backlog is False  # 3 waiting
    wide = trigger(tenant, "wide")
    assert services.evaluate_run(wide)
    queued = queue_ready(tenant, _Collecting())
    assert len(queued.tasks) == 40 and queued.backlog is True  # 43 waiting, none running
    TaskInstance.objects.filter(dag_run=wide, task_id__in=[f"w{i}" for i in range(20)]).update(
        state=TIState.RUNNING
    )
    assert queue_ready(tenant, _Collecting()).backlog is False  # nothing new: 23 waiting, 20 running


@contextmanager
def _loop_with_slow_passes(
    monkeypatch, tenant_id: int, *, pass_s: float, queues_work: bool, backlog: bool = False, active: int = 0
) -> Iterator[list]:
    """The real scheduling loop for the tenant in a thread, each pass taking `pass_s`, queueing work or not
    (onto a backlog or not) and leaving `active` tries queued or running; yields the monotonic start times of
    its passes."""
    from scheduler import loop, supervisor, wakeup

    passes: list[float] = []

    class SlowScheduler:
        def __init__(self, tenant_id: int, executor: object) -> None:
            self.tenant_id = tenant_id

        def run_pass(self) -> loop.PassResult:
            passes.append(time.monotonic())
            time.sleep(pass_s)
            return loop.PassResult(tasks_queued=1 if queues_work else 0, backlog=backlog, tasks_active=active)

    monkeypatch.setattr(loop, "TenantScheduler", SlowScheduler)
    stop = threading.Event()
    thread = threading.Thread(
        target=supervisor.schedule_tenants, args=([tenant_id], None, stop, LocalExecutor(1))
    )
    thread.start()
    try:
        yield passes
    finally:
        stop.set()
        wakeup.interrupt()
        thread.join(10)


def _stream_of_wake_ups(tenant_id: int, seconds: float) -> float:
    """Wake the tenant every millisecond for `seconds`; returns when the last wake-up was sent."""
    from scheduler import wakeup

    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        wakeup.notify_local(tenant_id)
        time.sleep(0.001)
    return time.monotonic()


def _passes_under_a_stream_of_wake_ups(
    monkeypatch, tenant_id: int, *, queues_work: bool, backlog: bool = False
) -> int:
    """How many passes the loop runs in 1.5 s while the tenant is woken every millisecond, each pass taking
    20 ms and queueing work or not (onto a backlog or not)."""
    with _loop_with_slow_passes(
        monkeypatch, tenant_id, pass_s=0.02, queues_work=queues_work, backlog=backlog
    ) as passes:
        _stream_of_wake_ups(tenant_id, 1.5)
    return len(passes)


def test_under_a_stream_of_events_passes_that_queue_nothing_or_onto_a_backlog_rest_longer(
    tenant, monkeypatch
):
    busy = _passes_under_a_stream_of_wake_ups(monkeypatch, tenant.pk, queues_work=True)
    idle = _passes_under_a_stream_of_wake_ups(monkeypatch, tenant.pk, queues_work=False)
    onto_backlog = _passes_under_a_stream_of_wake_ups(monkeypatch, tenant.pk, queues_work=True, backlog=True)
    # Resting once as long as a pass: about 1.5 s / 40 ms; three times as long: about 1.5 s / 80 ms.
    assert 20 <= busy <= 45, busy
    assert idle < 0.75 * busy, (idle, busy)
    assert onto_backlog < 0.75 * busy, (onto_backlog, busy)


def test_a_pass_deferred_for_its_rest_runs_once_the_stream_of_events_pauses(tenant, monkeypatch):
    from scheduler import wakeup

    # Passes of 50 ms that queue nothing: each rests 3 x 50 ms.
    with _loop_with_slow_passes(monkeypatch, tenant.pk, pass_s=0.05, queues_work=False) as passes:
        _stream_of_wake_ups(tenant.pk, 0.3)
        seen = len(passes)
        while len(passes) == seen:
            wakeup.notify_local(tenant.pk)
            time.sleep(0.001)
        last_event = _stream_of_wake_ups(tenant.pk, 0.06)  # through that pass, 10 ms into its rest, then none
        time.sleep(0.3)
    served = [started for started in passes if started > last_event]
    # Resting on would start it about 140 ms after the last event; the pause ends the rest after 20 ms.
    assert served and served[0] - last_event < 0.08, [round(p - last_event, 3) for p in passes[-3:]]


def test_a_deferred_pass_runs_once_every_try_the_last_pass_left_active_has_ended(tenant, monkeypatch):
    from scheduler import supervisor, wakeup

    monkeypatch.setattr(supervisor, "STREAM_QUIET_S", 5.0)  # only the count may end the rest early
    # Passes of 100 ms that queue nothing and leave 3 tries running: each rests 3 x 100 ms.
    with _loop_with_slow_passes(monkeypatch, tenant.pk, pass_s=0.1, queues_work=False, active=3) as passes:
        _stream_of_wake_ups(tenant.pk, 0.25)
        seen = len(passes)
        while len(passes) == seen:
            wakeup.notify_local(tenant.pk)
            time.sleep(0.001)
        _stream_of_wake_ups(tenant.pk, 0.12)  # through that pass, 20 ms into its rest: the tenant is deferred
        for _ in range(3):
            wakeup.notify_local(tenant.pk, ended=1)
        last_ended = time.monotonic()
        time.sleep(0.4)
    served = [started for started in passes if started > last_ended]
    # Resting on would start it about 280 ms after the third try ended.
    assert served and served[0] - last_ended < 0.1, [round(p - last_ended, 3) for p in passes[-3:]]


def test_the_local_executor_keeps_a_threads_database_connection_between_tasks(monkeypatch):
    from django.db import connection

    from workers import runner
    from workers.executors import QueuedTask

    def open_backends() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            return cursor.fetchone()[0]

    backends = []

    def record(**_: object) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()" if connection.vendor == "postgresql" else "SELECT 1")
            backends.append((id(connection.connection), cursor.fetchone()[0]))

    monkeypatch.setattr(runner, "run_task_instance", record)
    before = open_backends() if connection.vendor == "postgresql" else 0
    executor = LocalExecutor(parallelism=1)
    for ti_id in (1, 2, 3):
        executor.submit([QueuedTask(1, "t", ti_id, 1)])
    executor.shutdown(wait=True)
    assert len(backends) == 3
    if connection.vendor == "postgresql":  # (SQLite's CONN_MAX_AGE is 0: a new connection per task)
        assert len(set(backends)) == 1  # one connection, so PostgreSQL keeps its prepared statements
        # and closed with the executor (a backend ends a moment after its client hangs up)
        deadline = time.monotonic() + 5
        while open_backends() != before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert open_backends() == before


def test_a_thread_running_tries_back_to_back_checks_its_connection_once_a_second(monkeypatch):
    from django.db import connections
    from django.db.utils import ProgrammingError

    from workers import executors

    connection = connections["default"]

    def query() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    real_is_usable = type(connection).is_usable
    health_checks = []
    monkeypatch.setattr(
        type(connection), "is_usable", lambda self: health_checks.append(1) or real_is_usable(self)
    )
    monkeypatch.setattr(executors, "_connections_checked", threading.local())
    query()
    if connection.vendor == "sqlite":  # CONN_MAX_AGE 0: the connection is still replaced before every try
        opened = connection.connection  # held: a new connection cannot take its place in memory (and id)
        executors.check_connections()
        query()
        assert connection.connection is not opened
        return
    executors.check_connections()  # the first try of the thread: Django's health check, on first use
    query()
    assert len(health_checks) == 1
    for _ in range(3):  # the next tries within the second: none
        executors.check_connections()
        query()
    assert len(health_checks) == 1
    with pytest.raises(ProgrammingError), connection.cursor() as cursor:
        cursor.execute("SELECT no_such_column")
    executors.check_connections()  # a connection that failed is checked at once
    assert len(health_checks) == 2
    monkeypatch.setattr(executors, "CONNECTION_CHECK_S", 0.0)
    executors.check_connections()  # and so is one used longer than CONNECTION_CHECK_S ago
    query()
    assert len(health_checks) == 3
