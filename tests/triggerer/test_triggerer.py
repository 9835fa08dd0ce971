"""The triggerer against the real engine: tasks deferred by the real runner, triggers in sandboxed hosts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from scheduler.models import TaskInstance, TaskInstanceHistory
from scheduler.states import DagRunState, TIState, transition, transition_run
from tenants import services as tenant_services
from tradewind.secrets import services as secrets
from workers import sandbox
from workers.sandbox import Limits
from workers.sandbox.limits import tenant_ids

from .conftest import ACTOR, dag_file, deferred, drive, log_of, run_try, start_run, state_of

pytestmark = pytest.mark.django_db(transaction=True)


def sandbox_children() -> list[int]:
    """Pids of this process's sandboxed children (the fork server's children)."""
    server = sandbox.fork_server_pid()
    children = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == server and stat[0] != "Z":
                children.append(int(entry.name))
    return children


def test_deferrable_time_sensors_are_resumed_and_succeed(tenant, upload, make_triggerer):
    upload(
        tenant,
        {
            "job.py": dag_file("""
from tradewind.sdk.sensors.date_time import DateTimeSensorAsync
from tradewind.sdk.sensors.time_delta import TimeDeltaSensorAsync

TimeDeltaSensorAsync(task_id="delta", delta=timedelta(seconds=3))
DateTimeSensorAsync(
    task_id="moment", target_time="{{ (dag_run.start_date + macros.timedelta(seconds=3)).isoformat() }}"
)
""")
        },
    )
    run = start_run(tenant, "job")
    delta, moment = deferred(run, "delta"), deferred(run, "moment")
    triggerer = make_triggerer(tenant)
    triggerer.run_pass()
    claimed = TaskInstance.objects.get(pk=delta.pk)
    assert claimed.state == TIState.DEFERRED and claimed.trigger_claimed_by == triggerer.owner
    drive(triggerer, until=lambda: state_of(delta) == state_of(moment) == TIState.SCHEDULED)
    resumed = TaskInstance.objects.get(pk=delta.pk)
    assert resumed.next_method == "execute_complete" and "event" in resumed.next_kwargs
    assert resumed.trigger is None and resumed.trigger_claimed_by == ""
    for ti in (delta, moment):
        done = run_try(ti)
        assert done.state == TIState.SUCCESS and done.try_number == 1, done.error
        text = log_of(done)
        assert f"runs in triggerer {triggerer.owner}" in text and "trigger fired; the task resumes" in text


def test_a_deferrable_file_sensor_resumes_when_the_file_appears(tenant, upload, make_triggerer, out_dir):
    upload(
        tenant,
        {
            "job.py": dag_file("""
from tradewind.sdk.sensors.filesystem import FileSensor

FileSensor(task_id="wait", filepath="{{ dag_run.conf['path'] }}", deferrable=True, poke_interval=0.1)
""")
        },
    )
    path = out_dir / "ready.csv"
    run = start_run(tenant, "job", conf={"path": str(path)})
    ti = deferred(run, "wait")
    triggerer = make_triggerer(tenant)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        triggerer.run_pass()
        time.sleep(0.05)
    assert state_of(ti) == TIState.DEFERRED
    path.write_text("a,b\n")
    drive(triggerer, until=lambda: state_of(ti) == TIState.SCHEDULED)
    assert run_try(ti).state == TIState.SUCCESS


def test_a_trigger_timeout_fails_the_try_and_retries_apply(tenant, upload, make_triggerer):
    upload(
        tenant,
        {
            "job.py": dag_file("""
from tradewind.sdk.sensors.filesystem import FileSensor
from tradewind.sdk.triggers import DateTimeTrigger


class Waits(BaseOperator):
    def execute(self, context):
        self.defer(
            trigger=DateTimeTrigger(moment=datetime(2999, 1, 1).astimezone()),
            method_name="done",
            timeout=timedelta(seconds=1),
        )

    def done(self, context, event=None):
        return event


Waits(task_id="waits", retries=1, retry_delay=timedelta(seconds=0))
FileSensor(task_id="sensor", filepath="/nonexistent/x", deferrable=True, timeout=1, retries=2)
""")
        },
    )
    run = start_run(tenant, "job")
    waits, sensor = deferred(run, "waits"), deferred(run, "sensor")
    triggerer = make_triggerer(tenant)
    drive(triggerer, until=lambda: state_of(waits) == state_of(sensor) == TIState.SCHEDULED)
    assert TaskInstance.objects.get(pk=waits.pk).next_kwargs == {"error": "Trigger/execution timeout"}
    retried = run_try(waits)
    assert retried.state == TIState.UP_FOR_RETRY and "Trigger/execution timeout" in retried.error
    assert TaskInstanceHistory.objects.filter(task_instance=waits, try_number=1).exists()
    assert "trigger timed out" in log_of(retried)
    failed = run_try(sensor)  # Airflow: a deferrable sensor's timeout is a sensor timeout, never retried
    assert failed.state == TIState.FAILED and failed.try_number == 1


def test_a_failing_trigger_fails_its_task_with_the_error(tenant, upload, make_triggerer):
    upload(
        tenant,
        {
            "job.py": dag_file("""
from triggers_lib import BoomTrigger


class Defers(BaseOperator):
    def execute(self, context):
        self.defer(trigger=BoomTrigger(), method_name="done")

    def done(self, context, event=None):
        return event


Defers(task_id="boom")
""")
        },
    )
    run = start_run(tenant, "job")
    ti = deferred(run, "boom")
    triggerer = make_triggerer(tenant)
    drive(triggerer, until=lambda: state_of(ti) == TIState.SCHEDULED)
    failed = run_try(ti)
    assert failed.state == TIState.FAILED
    assert "boom from the trigger" in failed.error and "TaskDeferralError" in failed.error
    text = log_of(failed)
    assert "trigger failed: ValueError in trigger triggers_lib.BoomTrigger" in text
    assert 'raise ValueError("boom from the trigger")' in text  # the trigger's traceback


def test_a_trigger_defined_in_the_dag_file_runs(tenant, upload, make_triggerer):
    source = (Path(__file__).resolve().parents[1] / "dags" / "triggerer" / "own_trigger.py").read_text()
    upload(tenant, {"own_trigger.py": source})
    run = start_run(tenant, "own_trigger")
    ti = deferred(run, "countdown")
    drive(make_triggerer(tenant), until=lambda: state_of(ti) == TIState.SCHEDULED)
    done = run_try(ti)
    assert done.state == TIState.SUCCESS, done.error


def test_fifty_deferred_tasks_wait_in_one_process_and_hold_no_worker_slot(
    tenant, upload, make_triggerer, out_dir
):
    upload(
        tenant,
        {
            "job.py": dag_file("""
from tradewind.sdk.sensors.filesystem import FileSensor

for i in range(50):
    FileSensor(task_id=f"wait_{i}", filepath="{{ dag_run.conf['path'] }}", deferrable=True, poke_interval=0.2)
""")
        },
    )
    path = out_dir / "go"
    run = start_run(tenant, "job", conf={"path": str(path)})
    tis = [deferred(run, f"wait_{i}") for i in range(50)]
    triggerer = make_triggerer(tenant)
    drive(triggerer, until=lambda: all(f"runs in triggerer {triggerer.owner}" in log_of(ti) for ti in tis))
    time.sleep(0.5)  # every trigger is polling for the file now
    assert len(sandbox_children()) == 1  # one host process for the 50 waits
    assert not TaskInstance.objects.filter(dag_run=run, state__in=[TIState.QUEUED, TIState.RUNNING]).exists()
    path.write_text("go")
    drive(
        triggerer,
        until=lambda: TaskInstance.objects.filter(dag_run=run, state=TIState.SCHEDULED).count() == 50,
    )


def test_claims_split_deferrals_between_triggerers_without_overlap(tenant, upload, make_triggerer, out_dir):
    upload(
        tenant,
        {
            "job.py": dag_file("""
from tradewind.sdk.sensors.filesystem import FileSensor

for i in range(4):
    FileSensor(task_id=f"wait_{i}", filepath="{{ dag_run.conf['path'] }}", deferrable=True, poke_interval=0.2)
""")
        },
    )
    path = out_dir / "go"
    run = start_run(tenant, "job", conf={"path": str(path)})
    tis = [deferred(run, f"wait_{i}") for i in range(4)]
    first, second = make_triggerer(tenant, capacity=2), make_triggerer(tenant, capacity=10)
    first.run_pass()
    second.run_pass()
    owners = list(TaskInstance.objects.filter(dag_run=run).values_list("trigger_claimed_by", flat=True))
    assert sorted(owners) == sorted([first.owner] * 2 + [second.owner] * 2)
    path.write_text("go")
    drive(first, second, until=lambda: all(state_of(ti) == TIState.SCHEDULED for ti in tis))
    for ti in tis:
        assert log_of(ti).count("trigger fired") == 1


def test_a_task_moved_on_while_deferred_has_its_trigger_cancelled(
    tenant, upload, make_triggerer, out_dir, settings
):
    settings.TRADEWIND_LEASE_SECONDS = 0.6  # claims renewed (stale ones given up) every 0.2 s
    marker = out_dir / "cleaned"
    upload(
        tenant,
        {
            "job.py": dag_file(f"""
from triggers_lib import CleanupTrigger


class Defers(BaseOperator):
    def execute(self, context):
        self.defer(trigger=CleanupTrigger(path={str(marker)!r}), method_name="done")

    def done(self, context, event=None):
        return event


Defers(task_id="waits")
""")
        },
    )
    run = start_run(tenant, "job")
    ti = deferred(run, "waits")
    triggerer = make_triggerer(tenant)
    drive(triggerer, until=lambda: "runs in triggerer" in log_of(ti))
    time.sleep(0.5)
    ti = TaskInstance.objects.get(pk=ti.pk)
    assert transition(ti, TIState.FAILED)  # a user marked it failed
    drive(triggerer, until=marker.exists)  # its cleanup ran: it was cancelled
    drive(triggerer, until=lambda: TaskInstance.objects.get(pk=ti.pk).trigger_claimed_by == "")


def test_a_trigger_that_kills_its_host_fails_alone(tenant, upload, make_triggerer):
    upload(
        tenant,
        {
            "job.py": dag_file("""
from triggers_lib import ExitTrigger, SleepTrigger


class Defers(BaseOperator):
    def __init__(self, trigger, **kwargs):
        super().__init__(**kwargs)
        self.trigger = trigger

    def execute(self, context):
        self.defer(trigger=self.trigger, method_name="done")

    def done(self, context, event=None):
        return event


Defers(task_id="exits", trigger=ExitTrigger(after=0.5))
for i in range(3):
    Defers(task_id=f"innocent_{i}", trigger=SleepTrigger(seconds=3))
""")
        },
    )
    run = start_run(tenant, "job")
    exits = deferred(run, "exits")
    innocents = [deferred(run, f"innocent_{i}") for i in range(3)]
    triggerer = make_triggerer(tenant)
    drive(triggerer, until=lambda: all(state_of(ti) == TIState.SCHEDULED for ti in [exits, *innocents]))
    failed = TaskInstance.objects.get(pk=exits.pk)
    assert failed.next_method == "__fail__"
    assert "the trigger's process died" in failed.next_kwargs["error"]
    assert "exited with status 3" in failed.next_kwargs["error"]
    for ti in innocents:
        assert "event" in TaskInstance.objects.get(pk=ti.pk).next_kwargs
    assert run_try(innocents[0]).state == TIState.SUCCESS


def test_a_trigger_blocking_its_loop_is_killed_and_fails_alone(tenant, upload, make_triggerer):
    upload(
        tenant,
        {
            "job.py": dag_file("""
from triggers_lib import BlockingTrigger, SleepTrigger


class Defers(BaseOperator):
    def __init__(self, trigger, **kwargs):
        super().__init__(**kwargs)
        self.trigger = trigger

    def execute(self, context):
        self.defer(trigger=self.trigger, method_name="done")

    def done(self, context, event=None):
        return event


Defers(task_id="blocks", trigger=BlockingTrigger(seconds=3600))
Defers(task_id="innocent", trigger=SleepTrigger(seconds=1))
""")
        },
    )
    run = start_run(tenant, "job")
    blocks, innocent = deferred(run, "blocks"), deferred(run, "innocent")
    triggerer = make_triggerer(tenant, stall_s=1.5, limits=Limits(kill_grace_s=0.5))
    drive(triggerer, until=lambda: state_of(blocks) == state_of(innocent) == TIState.SCHEDULED, timeout=60)
    assert "event loop was blocked" in TaskInstance.objects.get(pk=blocks.pk).next_kwargs["error"]
    assert "event" in TaskInstance.objects.get(pk=innocent.pk).next_kwargs


@pytest.mark.skipif(os.geteuid() != 0, reason="per-tenant uids need a root parent")
def test_a_tenants_triggers_run_under_its_uid_and_cannot_touch_another_tenants(
    tenant, other_tenant, upload, make_triggerer
):
    defers = """
from triggers_lib import KillTrigger, SleepTrigger


class Defers(BaseOperator):
    def __init__(self, trigger, **kwargs):
        super().__init__(**kwargs)
        self.trigger = trigger

    def execute(self, context):
        self.defer(trigger=self.trigger, method_name="done")

    def done(self, context, event=None):
        return event
"""
    uid_a, uid_b = tenant_ids(tenant.pk)[0], tenant_ids(other_tenant.pk)[0]
    upload(
        tenant, {"a.py": dag_file(f"{defers}\nDefers(task_id='attack', trigger=KillTrigger(uid={uid_b}))")}
    )
    upload(
        other_tenant, {"b.py": dag_file(f"{defers}\nDefers(task_id='wait', trigger=SleepTrigger(seconds=2))")}
    )
    victim = deferred(start_run(other_tenant, "job"), "wait")
    triggerer = make_triggerer(tenant, other_tenant)
    drive(triggerer, until=lambda: "runs in triggerer" in log_of(victim))
    time.sleep(0.3)  # B's host is up
    attacker = deferred(start_run(tenant, "job"), "attack")
    drive(triggerer, until=lambda: state_of(attacker) == state_of(victim) == TIState.SCHEDULED)
    attack = TaskInstance.objects.get(pk=attacker.pk).next_kwargs["event"]
    assert attack["uid"] == uid_a
    assert attack["outcomes"] and set(attack["outcomes"]) == {"refused"}
    waited = TaskInstance.objects.get(pk=victim.pk).next_kwargs["event"]
    assert waited["uid"] == uid_b  # B's trigger was untouched and fired in B's own process


def test_a_suspended_tenants_deferrals_are_not_claimed(tenant, upload, make_triggerer):
    upload(
        tenant,
        {
            "job.py": dag_file("""
from tradewind.sdk.sensors.time_delta import TimeDeltaSensorAsync

TimeDeltaSensorAsync(task_id="delta", delta=timedelta(seconds=3))
""")
        },
    )
    ti = deferred(start_run(tenant, "job"), "delta")
    tenant_services.set_tenant_status(tenant=tenant, status=tenant.Status.SUSPENDED)
    triggerer = make_triggerer(tenant)
    triggerer.run_pass()
    assert TaskInstance.objects.get(pk=ti.pk).trigger_claimed_by == ""
    tenant_services.set_tenant_status(tenant=tenant, status=tenant.Status.ACTIVE)
    drive(triggerer, until=lambda: state_of(ti) == TIState.SCHEDULED)


def test_a_host_without_triggers_for_a_while_is_stopped(tenant, upload, make_triggerer):
    upload(
        tenant,
        {
            "job.py": dag_file("""
from tradewind.sdk.sensors.time_delta import TimeDeltaSensorAsync

TimeDeltaSensorAsync(task_id="delta", delta=timedelta(seconds=3))
""")
        },
    )
    ti = deferred(start_run(tenant, "job"), "delta")
    triggerer = make_triggerer(tenant, idle_s=0.5)
    drive(triggerer, until=lambda: "runs in triggerer" in log_of(ti))
    assert len(sandbox_children()) == 1
    drive(triggerer, until=lambda: state_of(ti) == TIState.SCHEDULED)
    drive(triggerer, until=lambda: not sandbox_children())


DEFERS = """
import triggers_lib


class Defers(BaseOperator):
    def __init__(self, trigger, **kwargs):
        super().__init__(**kwargs)
        self.trigger = trigger

    def execute(self, context):
        self.defer(trigger=self.trigger, method_name="done")

    def done(self, context, event=None):
        return event
"""


def test_a_trigger_asks_the_platform_as_its_task_and_only_sees_its_tenant(
    tenant, other_tenant, upload, make_triggerer
):
    upload(other_tenant, {"other.py": dag_file('EmptyOperator(task_id="e")', dag_id="upstream")})
    foreign = start_run(other_tenant, "upstream")
    upload(tenant, {"up.py": dag_file('EmptyOperator(task_id="e")', dag_id="upstream")})
    upstream = start_run(tenant, "upstream")
    body = f"""{DEFERS}
Defers(task_id="mine", trigger=triggers_lib.RunStateTrigger(dag_id="upstream", run_id={upstream.run_id!r}))
Defers(task_id="foreign", trigger=triggers_lib.RunStateTrigger(dag_id="upstream", run_id={foreign.run_id!r}))
"""
    upload(
        tenant, {"up.py": dag_file('EmptyOperator(task_id="e")', dag_id="upstream"), "job.py": dag_file(body)}
    )
    run = start_run(tenant, "job")
    mine, other = deferred(run, "mine"), deferred(run, "foreign")
    triggerer = make_triggerer(tenant)
    drive(triggerer, until=lambda: state_of(other) == TIState.SCHEDULED)
    assert TaskInstance.objects.get(pk=other.pk).next_kwargs["event"] == {"state": None}  # not A's
    triggerer.run_pass()
    assert state_of(mine) == TIState.DEFERRED
    assert transition_run(upstream, DagRunState.SUCCESS)
    drive(triggerer, until=lambda: state_of(mine) == TIState.SCHEDULED)
    assert TaskInstance.objects.get(pk=mine.pk).next_kwargs["event"] == {"state": "success"}


def test_what_a_trigger_prints_goes_to_its_task_log_masked(tenant, upload, make_triggerer):
    secrets.set_connection(
        tenant=tenant,
        actor=ACTOR,
        fields={"conn_id": "warehouse", "conn_type": "postgres", "password": "Sup3r-Secret-Pw"},
    )
    body = f'{DEFERS}\nDefers(task_id="leak", trigger=triggers_lib.SecretTrigger(conn_id="warehouse"))\n'
    upload(tenant, {"job.py": dag_file(body)})
    ti = deferred(start_run(tenant, "job"), "leak")
    drive(make_triggerer(tenant), until=lambda: state_of(ti) == TIState.SCHEDULED)
    text = log_of(ti)
    assert "the password is ***" in text and "Sup3r-Secret-Pw" not in text
