"""Helpers for the engine tests: evaluate real SDK DAGs without the DB, and drive runs through the services
with outcomes applied by hand (the real task runner is tested elsewhere)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from scheduler import services
from scheduler.evaluation import NO_MAP_INDEX, DagSpec, Decisions, PastRun, TISnapshot, evaluate
from scheduler.models import DagRun, TaskInstance, XCom
from scheduler.states import RUN_FINISHED
from tradewind.sdk.serialization import serialize_dag

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


def spec_of(dag: Any) -> DagSpec:
    """The engine's reading of an SDK DAG (or of a serialized dict)."""
    return DagSpec.from_serialized(dag if isinstance(dag, dict) else serialize_dag(dag))


def parse_label(label: str) -> tuple[str, int]:
    """ "task" -> ("task", -1); "task[2]" -> ("task", 2)."""
    if label.endswith("]") and "[" in label:
        task_id, index = label[:-1].split("[")
        return task_id, int(index)
    return label, NO_MAP_INDEX


def label_of(task_id: str, map_index: int) -> str:
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


def snapshots(states: Mapping[str, str], **extra: dict[str, Any]) -> list[TISnapshot]:
    """TI snapshots from {"task" or "task[i]": state}; `extra[label]` sets more fields (try_number...)."""
    result = []
    for pk, (label, state) in enumerate(states.items(), start=1):
        task_id, map_index = parse_label(label)
        result.append(
            TISnapshot(task_id=task_id, map_index=map_index, state=state, pk=pk, **extra.get(label, {}))
        )
    return result


def evaluated(
    dag: Any,
    states: Mapping[str, str] | None = None,
    *,
    now: dt.datetime = NOW,
    run_state: str = "running",
    run_start_date: dt.datetime | None = None,
    xcoms: Mapping[tuple[str, int, str], int | None] | None = None,
    past: Mapping[str, tuple[str, ...]] | None = None,
    extra: dict[str, dict[str, Any]] | None = None,
) -> tuple[dict[str, str], Decisions]:
    """Evaluate a DAG given TI states (tasks not listed start in "none") → (label -> state after, decisions)."""
    spec = dag if isinstance(dag, DagSpec) else spec_of(dag)
    full = {task_id: "none" for task_id in spec.tasks}
    for label in states or {}:
        full.pop(parse_label(label)[0], None)
    full.update(states or {})
    snaps = snapshots(full, **(extra or {}))
    decisions = evaluate(
        spec,
        snaps,
        now=now,
        run_state=run_state,
        run_start_date=run_start_date,
        xcom_lengths=xcoms,
        past=PastRun(states=past) if past is not None else None,
    )
    after = {label_of(s.task_id, s.map_index): str(s.state) for s in snaps}
    by_pk = {s.pk: label_of(s.task_id, s.map_index) for s in snaps}
    for change in decisions.changes:
        label = by_pk[change.pk]
        del after[label]
        index = change.map_index if change.new_map_index is None else change.new_map_index
        after[label_of(change.task_id, index)] = change.new_state
    for new in decisions.creates:
        after[label_of(new.task_id, new.map_index)] = new.state
    return after, decisions


# --- driving runs on the DB ---------------------------------------------------------------------------------

Outcome = Mapping[str, Any] | Callable[[TaskInstance], Mapping[str, Any]]


def states_of(run: DagRun) -> dict[str, str]:
    """label -> state of every task instance of the run."""
    return {
        label_of(t, mi): s for t, mi, s in run.task_instances.values_list("task_id", "map_index", "state")
    }


def push_xcom(
    run: DagRun, task_id: str, value: Any, map_index: int = NO_MAP_INDEX, key: str = "return_value"
) -> None:
    """Store an XCom as the task runner does when a task returns a value."""
    XCom.objects.update_or_create(
        tenant_id=run.tenant_id,
        dag_run=run,
        task_id=task_id,
        map_index=map_index,
        key=key,
        defaults={"value": value},
    )


def run_once(run: DagRun, ti: TaskInstance, outcome: Outcome | None = None) -> TaskInstance:
    """Start one queued task instance and finish it with `outcome` (default success). An outcome may carry
    "xcom": value (pushed as the return value) and "xcoms": {key: value}, pushed before the finish."""
    started = services.start_task_instance(
        tenant_id=ti.tenant_id, ti_id=ti.pk, try_number=ti.try_number, hostname="test-host", pid=4242
    )
    assert started is not None, f"{ti} could not start"
    result = dict(outcome(started) if callable(outcome) else (outcome or {"state": "success"}))
    if "xcom" in result:
        push_xcom(run, started.task_id, result.pop("xcom"), started.map_index)
    for key, value in result.pop("xcoms", {}).items():
        push_xcom(run, started.task_id, value, started.map_index, key=key)
    result.setdefault("state", "success")
    return services.finish_task_instance(started, result)


def drive(
    run: DagRun,
    outcomes: Mapping[str, Outcome] | None = None,
    *,
    now: dt.datetime | None = None,
    max_passes: int = 50,
) -> dict[str, str]:
    """schedule → queue → run every ready task instance with its outcome (looked up by "task[i]", then by
    task id; default success), until the run finishes or nothing is ready; returns the final states."""
    outcomes = outcomes or {}
    for _ in range(max_passes):
        ready = services.schedule_run(run, now=now)
        if run.state in RUN_FINISHED or not ready:
            break
        for ti in services.queue_task_instances(ready):
            label = label_of(ti.task_id, ti.map_index)
            run_once(run, ti, outcomes.get(label, outcomes.get(ti.task_id)))
    run.refresh_from_db()
    return states_of(run)
