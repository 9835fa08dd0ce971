"""Run evaluation: the one place that decides what happens next in a DAG run, with Airflow's semantics.

Pure logic, no I/O: a serialized DAG (as `tradewind.sdk.serialization.serialize_dag` stores it), a snapshot
of the run's task instances, the lengths of the XCom values mapped tasks expand over, the previous run's
task states (depends_on_past) and the time → the state changes to make, the task instances to create, and
the run's new state. `scheduler.services` loads the snapshot, calls `evaluate()` and writes the decisions;
`dags test` and the production scheduler both go through it.

What `evaluate()` decides, in Airflow's terms:
- every trigger rule over the direct upstream task instances, with skipped / upstream_failed propagation
  (Airflow's TriggerRuleDep with flag_upstream_failed), and the setup constraint: a work task waits for
  its relevant indirect setups and is upstream_failed / skipped when one of them is;
- mapping: a mapped task (or a task in a mapped task group) expands once its trigger rule is met and the
  upstream tasks feeding its expand input have succeeded. The placeholder row (map_index -1) becomes map
  index 0 and rows 1..n-1 are created; length 0 skips it; a missing or unmappable value fails it upstream;
- retries and reschedules whose `next_retry_at` has come are scheduled again;
- depends_on_past / wait_for_downstream against the previous run (Airflow 3: every map index of the task);
- dagrun_timeout (unfinished task instances are skipped and the run fails), the DAG's fail_fast;
- tasks missing from the run's own DAG version are removed (and restored if they come back);
- the run's state from its effective leaves (teardowns ignored unless on_failure_fail_dagrun), and a
  deadlock, where nothing can ever progress, fails the run with the reason instead of hanging.

Branch and short-circuit outcomes are turned into skips by `skips_for_outcome()`; retry timing is
`next_retry_at()`.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from scheduler.states import ALLOWED, FINISHED, DagRunState, TIState

S = TIState
NO_MAP_INDEX = -1
RETURN_KEY = "return_value"
MAX_RETRY_DELAY_S = 24 * 60 * 60  # Airflow's [core] max_task_retry_delay default
SUCCESSFUL = frozenset({S.SUCCESS, S.SKIPPED})
FAILED_STATES = frozenset({S.FAILED, S.UPSTREAM_FAILED})
DEFAULT_RETRY_DELAY_S = 300.0

# --- The DAG, as the engine reads its serialization ------------------------------------------------------


@dataclass(frozen=True)
class TaskSpec:
    """The scheduling-relevant attributes of one serialized task."""

    task_id: str
    upstream: frozenset[str] = frozenset()
    downstream: frozenset[str] = frozenset()
    trigger_rule: str = "all_success"
    retries: int = 0
    retry_delay_s: float = DEFAULT_RETRY_DELAY_S
    retry_exponential_backoff: bool = False
    max_retry_delay_s: float | None = None
    depends_on_past: bool = False
    wait_for_downstream: bool = False
    is_setup: bool = False
    is_teardown: bool = False
    on_failure_fail_dagrun: bool = False
    is_mapped: bool = False
    expand_input: Mapping[str, Any] | None = None
    group_id: str | None = None
    mapped_group: str | None = None  # the innermost mapped task group the task is in
    operator: str = ""
    pool: str = "default_pool"
    pool_slots: int = 1
    queue: str = "default"
    priority_weight: int = 1
    execution_timeout_s: float | None = None

    @property
    def needs_expansion(self) -> bool:
        """Whether the task's instances are created by expanding a placeholder at run time."""
        return self.is_mapped or self.mapped_group is not None


@dataclass(frozen=True)
class DagSpec:
    """A serialized DAG's tasks and the run-level settings the engine honours."""

    dag_id: str
    tasks: Mapping[str, TaskSpec]
    order: tuple[str, ...]  # topological: every task after its upstream tasks
    dagrun_timeout_s: float | None = None
    fail_fast: bool = False
    catchup: bool = True
    mapped_groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # group_id -> expand input
    group_parents: Mapping[str, str] = field(default_factory=dict)  # group_id -> enclosing group_id
    group_tasks: Mapping[str, frozenset[str]] = field(default_factory=dict)  # group_id -> tasks, nested too

    @classmethod
    def from_serialized(cls, serialized: Mapping[str, Any]) -> DagSpec:
        """Read a `serialize_dag()` document; absent fields take Airflow's defaults."""
        raw_tasks = serialized.get("tasks") or []
        group_parents, mapped_groups, direct_members = _walk_groups(serialized.get("task_groups"))
        known = {raw["task_id"] for raw in raw_tasks}
        upstream: dict[str, set[str]] = {t: set() for t in known}
        for raw in raw_tasks:
            upstream[raw["task_id"]].update(u for u in raw.get("upstream_task_ids") or () if u in known)
            for down in raw.get("downstream_task_ids") or ():
                if down in known:
                    upstream[down].add(raw["task_id"])
        downstream: dict[str, set[str]] = {t: set() for t in known}
        for task_id, ups in upstream.items():
            for up in ups:
                downstream[up].add(task_id)
        group_of = {t: g for g, members in direct_members.items() for t in members}
        group_tasks: dict[str, set[str]] = defaultdict(set)
        tasks: dict[str, TaskSpec] = {}
        for raw in raw_tasks:
            task_id = raw["task_id"]
            group_id = raw.get("group_id") or group_of.get(task_id)
            node = group_id
            innermost_mapped = None
            while node:
                group_tasks[node].add(task_id)
                if innermost_mapped is None and node in mapped_groups:
                    innermost_mapped = node
                node = group_parents.get(node)
            weight = raw.get("priority_weight_total", raw.get("priority_weight"))
            tasks[task_id] = TaskSpec(
                task_id=task_id,
                upstream=frozenset(upstream[task_id]),
                downstream=frozenset(downstream[task_id]),
                trigger_rule=normalize_trigger_rule(raw.get("trigger_rule")),
                retries=int(raw.get("retries") or 0),
                retry_delay_s=_seconds(raw.get("retry_delay"), DEFAULT_RETRY_DELAY_S),
                retry_exponential_backoff=bool(raw.get("retry_exponential_backoff")),
                max_retry_delay_s=_seconds(raw.get("max_retry_delay"), None),
                depends_on_past=bool(raw.get("depends_on_past") or raw.get("wait_for_downstream")),
                wait_for_downstream=bool(raw.get("wait_for_downstream")),
                is_setup=bool(raw.get("is_setup")),
                is_teardown=bool(raw.get("is_teardown")),
                on_failure_fail_dagrun=bool(raw.get("on_failure_fail_dagrun")),
                is_mapped=bool(raw.get("is_mapped")),
                expand_input=raw.get("expand_input"),
                group_id=group_id,
                mapped_group=raw.get("mapped_group_id") or innermost_mapped,
                operator=str(raw.get("operator") or ""),
                pool=raw.get("pool") or "default_pool",
                pool_slots=int(raw.get("pool_slots") or 1),
                queue=raw.get("queue") or "default",
                priority_weight=int(weight if weight is not None else 1),
                execution_timeout_s=_seconds(raw.get("execution_timeout"), None),
            )
        return cls(
            dag_id=serialized.get("dag_id", ""),
            tasks=tasks,
            order=_topological(tasks),
            dagrun_timeout_s=_seconds(serialized.get("dagrun_timeout"), None),
            fail_fast=bool(serialized.get("fail_fast")),
            catchup=bool(serialized.get("catchup", True)),
            mapped_groups=mapped_groups,
            group_parents=group_parents,
            group_tasks={k: frozenset(v) for k, v in group_tasks.items()},
        )

    def relatives(self, task_id: str, *, upstream: bool) -> frozenset[str]:
        """Every task transitively upstream (or downstream) of `task_id`, itself excluded."""
        return (self._up_closures if upstream else self._down_closures)[task_id]

    @cached_property
    def _up_closures(self) -> dict[str, frozenset[str]]:
        result: dict[str, frozenset[str]] = {}
        for task_id in self.order:
            ups = self.tasks[task_id].upstream
            result[task_id] = frozenset(ups).union(*(result.get(u, ()) for u in ups))
        return result

    @cached_property
    def _down_closures(self) -> dict[str, frozenset[str]]:
        result: dict[str, frozenset[str]] = {}
        for task_id in reversed(self.order):
            downs = self.tasks[task_id].downstream
            result[task_id] = frozenset(downs).union(*(result.get(d, ()) for d in downs))
        return result

    @cached_property
    def relevant_setups(self) -> dict[str, frozenset[str]]:
        """Per non-teardown task, the setups it waits for (Airflow's get_upstreams_only_setups): upstream
        setups with no teardown at all, or with a teardown downstream of the task."""
        if not any(t.is_setup for t in self.tasks.values()):
            return {}
        result: dict[str, frozenset[str]] = {}
        for task_id, task in self.tasks.items():
            if task.is_teardown:
                continue
            down_teardowns = {d for d in self.relatives(task_id, upstream=False) if self.tasks[d].is_teardown}
            setups = set()
            for up in self.relatives(task_id, upstream=True):
                up_task = self.tasks[up]
                if not up_task.is_setup:
                    continue
                teardowns = {d for d in up_task.downstream if self.tasks[d].is_teardown}
                if not teardowns or teardowns & down_teardowns:
                    setups.add(up)
            if setups:
                result[task_id] = frozenset(setups)
        return result

    @cached_property
    def effective_leaves(self) -> frozenset[str]:
        """The tasks whose states decide the run's state: leaves once teardowns are ignored (a teardown
        with on_failure_fail_dagrun counts), as Airflow's DagRun.update_state."""

        def ignorable(task: TaskSpec) -> bool:
            return task.is_teardown and not task.on_failure_fail_dagrun

        leaves = {
            task_id
            for task_id, task in self.tasks.items()
            if not ignorable(task) and all(ignorable(self.tasks[d]) for d in task.downstream)
        }
        return frozenset(leaves or {t for t, task in self.tasks.items() if not task.downstream})

    def enclosing_mapped_groups(self, task_id: str) -> list[str]:
        """The mapped task groups around a task, innermost first."""
        groups = []
        node = self.tasks[task_id].group_id
        while node:
            if node in self.mapped_groups:
                groups.append(node)
            node = self.group_parents.get(node)
        return groups

    def expand_inputs(self, task_id: str) -> list[Mapping[str, Any]]:
        """The serialized expand inputs a task's map indexes come from: its mapped groups' and its own."""
        inputs = [self.mapped_groups[g] for g in self.enclosing_mapped_groups(task_id)]
        task = self.tasks[task_id]
        if task.is_mapped and task.expand_input:
            inputs.append(task.expand_input)
        return inputs

    def expansion_refs(self, task_id: str) -> frozenset[tuple[str, str]]:
        """The (task_id, key) XComs the task's expand inputs read."""
        refs = {ref for expand_input in self.expand_inputs(task_id) for ref in iter_xcom_refs(expand_input)}
        return frozenset(ref for ref in refs if ref[0] in self.tasks)

    def expansion_dependencies(self, task_id: str) -> frozenset[str]:
        """The tasks whose XCom feed the task's expand inputs (Airflow's iter_mapped_dependencies)."""
        return frozenset(t for t, _ in self.expansion_refs(task_id))

    def is_mapped_source(self, task_id: str) -> bool:
        """Whether `task_id` has map indexes (its XCom is then a collection over its map indexes)."""
        task = self.tasks.get(task_id)
        return task is not None and task.needs_expansion


def normalize_trigger_rule(rule: Any) -> str:
    """The rule a task runs with (the SDK's TriggerRule, Airflow 2's deprecated names resolved); ValueError
    for an unknown rule."""
    from tradewind.sdk.trigger_rule import normalize_trigger_rule as normalize

    return normalize(rule or "all_success").value


def _seconds(value: Any, default: float | None) -> float | None:
    if value is None:
        return default
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def _walk_groups(
    tree: Any,
) -> tuple[dict[str, str], dict[str, Mapping[str, Any]], dict[str, list[str]]]:
    """From the serialized task group tree {group_id, is_mapped, expand_input, tasks, groups}: group ->
    enclosing group, mapped group -> its expand input, group -> the tasks directly in it."""
    parents: dict[str, str] = {}
    mapped: dict[str, Mapping[str, Any]] = {}
    members: dict[str, list[str]] = {}

    def visit(node: Any, parent: str | None) -> None:
        if not isinstance(node, dict):
            return
        group_id = node.get("group_id")
        if group_id:
            members[group_id] = list(node.get("tasks") or ())
            if parent:
                parents[group_id] = parent
            if node.get("is_mapped") and node.get("expand_input"):
                mapped[group_id] = node["expand_input"]
        for child in node.get("groups") or ():
            visit(child, group_id or parent)

    visit(tree, None)
    return parents, mapped, members


def _topological(tasks: Mapping[str, TaskSpec]) -> tuple[str, ...]:
    """Kahn's order (ties by task id, so it is deterministic)."""
    waiting = {task_id: len(task.upstream) for task_id, task in tasks.items()}
    ready = deque(sorted(t for t, n in waiting.items() if n == 0))
    order: list[str] = []
    while ready:
        task_id = ready.popleft()
        order.append(task_id)
        for down in sorted(tasks[task_id].downstream):
            waiting[down] -= 1
            if waiting[down] == 0:
                ready.append(down)
    if len(order) != len(tasks):  # a cycle: the parser refuses these, but never loop forever here
        placed = set(order)
        order += sorted(t for t in tasks if t not in placed)
    return tuple(order)


# --- Mapping: expand input lengths ------------------------------------------------------------------------

# (task_id, map_index, key) -> len() of the XCom value that task instance pushed under that key when it is
# a list or dict, None when it is something else (unmappable). An XCom never pushed is absent.
XComLengths = Mapping[tuple[str, int, str], int | None]


def iter_xcom_refs(value: Any) -> Iterable[tuple[str, str]]:
    """The (task_id, key) pairs a serialized expand input (or a part of one) reads from XCom."""
    if isinstance(value, dict):
        ref = value.get("xcom")
        if isinstance(ref, dict) and "task_id" in ref:
            yield ref["task_id"], ref.get("key") or RETURN_KEY
            return
        for item in value.values():
            yield from iter_xcom_refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from iter_xcom_refs(item)


def _arg_length(arg: Mapping[str, Any], spec: DagSpec, xcoms: XComLengths) -> int:
    """The number of items one serialized expand argument gives (see tradewind.sdk.mappedoperator)."""
    if "literal" in arg:
        literal = arg["literal"]
        return int(arg["length"]) if "length" in arg else len(literal)
    if "xcom" in arg:
        task_id, key = arg["xcom"]["task_id"], arg["xcom"].get("key") or RETURN_KEY
        if spec.is_mapped_source(task_id):
            # Airflow maps over the collection of the values its map indexes pushed.
            return sum(1 for (t, mi, k) in xcoms if t == task_id and k == key and mi >= 0)
        if (task_id, NO_MAP_INDEX, key) not in xcoms:
            raise ValueError(f"{task_id!r} pushed no XCom {key!r} to expand over")
        length = xcoms[(task_id, NO_MAP_INDEX, key)]
        if length is None:
            raise ValueError(
                f"the XCom {key!r} of {task_id!r} is not a list or dict, so it cannot be mapped over"
            )
        return length
    if "map" in arg:
        return _arg_length(arg["map"], spec, xcoms)
    if "zip" in arg:
        lengths = [_arg_length(part, spec, xcoms) for part in arg["zip"]]
        if not lengths:
            return 0
        return max(lengths) if arg.get("fillvalue") else min(lengths)
    if "concat" in arg:
        return sum(_arg_length(part, spec, xcoms) for part in arg["concat"])
    raise ValueError(f"cannot tell how many items {arg!r} gives")


def expand_length(expand_input: Mapping[str, Any], spec: DagSpec, xcoms: XComLengths) -> int:
    """The map indexes one serialized expand input gives: expand() the product of its arguments' lengths,
    expand_kwargs() the length of its list. Raises ValueError naming what is missing or unmappable."""
    if expand_input.get("kind") == "list_of_dicts":
        return _arg_length(expand_input["arg"], spec, xcoms)
    if expand_input.get("kind") == "product":
        return math.prod(_arg_length(arg, spec, xcoms) for arg in expand_input["args"].values())
    raise ValueError(f"unknown expand input kind {expand_input.get('kind')!r}")


def map_length(spec: DagSpec, task_id: str, xcoms: XComLengths) -> int:
    """How many map indexes a task gets: the product over its enclosing mapped task groups' expand inputs
    and its own. Raises ValueError naming what is missing or unmappable."""
    return math.prod(expand_length(expand_input, spec, xcoms) for expand_input in spec.expand_inputs(task_id))


# --- Snapshots and decisions -----------------------------------------------------------------------------


@dataclass
class TISnapshot:
    """One task instance as evaluation reads it."""

    task_id: str
    map_index: int = NO_MAP_INDEX
    state: str = S.NONE
    try_number: int = 0
    next_retry_at: datetime | None = None
    pk: int | None = None


@dataclass(frozen=True)
class PastRun:
    """The previous run of the DAG (for depends_on_past): task_id -> the states of its task instances."""

    states: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class TIChange:
    """Move an existing row from `old_state` to `new_state` (and, for an expanded placeholder, to map
    index `new_map_index`)."""

    pk: int | None
    task_id: str
    map_index: int
    old_state: str
    new_state: str
    new_map_index: int | None = None
    try_number: int = 0


@dataclass(frozen=True)
class NewTI:
    """A row to create (a map index of an expanded task, or a task new in the run's version)."""

    task_id: str
    map_index: int
    state: str


@dataclass
class Decisions:
    """What one evaluation decided. `run_state` is None when the run's state does not change."""

    changes: list[TIChange] = field(default_factory=list)
    creates: list[NewTI] = field(default_factory=list)
    run_state: str | None = None
    failure_reason: str = ""
    waiting: dict[tuple[str, int], str] = field(default_factory=dict)  # why each none-state TI waits
    notes: dict[str, str] = field(default_factory=dict)  # "task[i]" -> why it was failed upstream

    @property
    def is_empty(self) -> bool:
        """Nothing to write."""
        return not self.changes and not self.creates and self.run_state is None


@dataclass
class _Cell:
    task_id: str
    map_index: int
    state: str
    orig_state: str
    pk: int | None = None
    try_number: int = 0
    next_retry_at: datetime | None = None
    new_map_index: int | None = None  # an expanded placeholder's new map index
    is_new: bool = False  # created by this evaluation

    @property
    def index(self) -> int:
        return self.map_index if self.new_map_index is None else self.new_map_index

    @property
    def label(self) -> str:
        return self.task_id if self.index < 0 else f"{self.task_id}[{self.index}]"


@dataclass(frozen=True)
class _Verdict:
    state: str | None = None  # a finished state to set (skipped, upstream_failed, removed)
    ready: bool = False
    reason: str = ""
    external: bool = False  # waits on something outside this run (the previous run), not a deadlock


_READY = _Verdict(ready=True)


def evaluate(
    spec: DagSpec,
    tis: Iterable[TISnapshot],
    *,
    now: datetime,
    run_state: str = DagRunState.RUNNING,
    run_start_date: datetime | None = None,
    xcom_lengths: XComLengths | None = None,
    past: PastRun | None = None,
) -> Decisions:
    """Evaluate a run once, to a fixed point: everything that follows from the snapshot is decided in this
    one call (a skip travels down a whole chain, an expanded task is scheduled at once).

    A finished run (success/failed) gives no decisions. `run_start_date` drives dagrun_timeout; `past`
    is the previous run for depends_on_past (None: there is none)."""
    return _Evaluation(spec, tis, now, run_state, run_start_date, xcom_lengths or {}, past).run()


class _Evaluation:
    def __init__(
        self,
        spec: DagSpec,
        tis: Iterable[TISnapshot],
        now: datetime,
        run_state: str,
        run_start_date: datetime | None,
        xcom_lengths: XComLengths,
        past: PastRun | None,
    ) -> None:
        self.spec = spec
        self.now = now
        self.run_state = run_state
        self.run_start_date = run_start_date
        self.xcoms = xcom_lengths
        self.past = past
        self.cells: list[_Cell] = []
        self.by_task: dict[str, list[_Cell]] = defaultdict(list)
        # Counts over an upstream task's cells are shared by all cells outside mapped groups; a task's
        # version changes with any of its cells, so a cached count is reused only while still exact.
        self.versions: dict[str, int] = defaultdict(int)
        self.count_cache: dict[tuple[str, ...], tuple[tuple[int, ...], _Counts]] = {}
        for ti in tis:
            state = str(ti.state)
            self._add(_Cell(ti.task_id, ti.map_index, state, state, ti.pk, ti.try_number, ti.next_retry_at))
        self.verdicts: dict[int, _Verdict] = {}  # id(cell) -> why a none-state cell still waits
        self.decisions = Decisions()

    def _add(self, cell: _Cell) -> None:
        self.cells.append(cell)
        self.by_task[cell.task_id].append(cell)
        self.versions[cell.task_id] += 1

    def _set(self, cell: _Cell, state: str) -> None:
        if state != cell.state and state in ALLOWED[TIState(cell.state)]:
            cell.state = state
            self.versions[cell.task_id] += 1

    # -- the passes --

    def run(self) -> Decisions:
        if self.run_state in (DagRunState.SUCCESS, DagRunState.FAILED):
            return self.decisions
        self._verify_integrity()
        if self._timed_out():
            self._finish_timed_out()
            return self._collect()
        self._due_waits()
        self._fail_fast()  # first: what it stops is skipped, before a failed upstream could fail it
        self._settle()
        self._decide_run_state()
        return self._collect()

    def _verify_integrity(self) -> None:
        """Rows of tasks not in the run's version are removed; a task that is back is restored; a task
        without rows gets its first one."""
        for task_id, cells in list(self.by_task.items()):
            if task_id not in self.spec.tasks:
                for cell in cells:
                    self._set(cell, S.REMOVED)
            elif all(cell.state == S.REMOVED for cell in cells):
                for cell in cells:
                    self._set(cell, S.NONE)
        for task_id in self.spec.order:
            if not self.by_task.get(task_id):
                self._add(_Cell(task_id, NO_MAP_INDEX, S.NONE, S.NONE, is_new=True))

    def _timed_out(self) -> bool:
        timeout = self.spec.dagrun_timeout_s
        return bool(
            timeout and self.run_start_date and self.now > self.run_start_date + timedelta(seconds=timeout)
        )

    def _finish_timed_out(self) -> None:
        """Airflow: a run past its dagrun_timeout fails and its unfinished task instances are skipped."""
        for cell in self.cells:
            if cell.state not in FINISHED:
                self._set(cell, S.SKIPPED if S.SKIPPED in ALLOWED[TIState(cell.state)] else S.FAILED)
        self.decisions.run_state = DagRunState.FAILED
        self.decisions.failure_reason = (
            f"the run exceeded its dagrun_timeout of {self.spec.dagrun_timeout_s:g} s"
        )

    def _fail_fast(self) -> None:
        """Airflow's fail_fast DAGs: once a task has failed, the other unfinished tasks stop (running ones
        fail, the rest are skipped); teardowns still run."""
        if not self.spec.fail_fast or not any(c.state == S.FAILED for c in self.cells):
            return
        for cell in self.cells:
            task = self.spec.tasks.get(cell.task_id)
            if task is not None and not task.is_teardown and cell.state not in FINISHED:
                self._set(cell, S.FAILED if cell.state == S.RUNNING else S.SKIPPED)

    def _due_waits(self) -> None:
        for cell in self.cells:
            if cell.state in (S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE) and (
                cell.next_retry_at is None or cell.next_retry_at <= self.now
            ):
                self._set(cell, S.SCHEDULED)

    def _settle(self) -> None:
        """Evaluate every none-state task instance in topological order until nothing changes."""
        changed = True
        while changed:
            changed = False
            for task_id in self.spec.order:
                task = self.spec.tasks[task_id]
                for cell in list(self.by_task[task_id]):
                    if cell.state != S.NONE:
                        continue
                    verdict = self._verdict(task, cell)
                    if verdict.state is not None:
                        self._set(cell, verdict.state)
                    elif verdict.ready and cell.index == NO_MAP_INDEX and task.needs_expansion:
                        self._expand(task, cell)
                    elif verdict.ready:
                        self._set(cell, S.SCHEDULED)
                    else:
                        self.verdicts[id(cell)] = verdict
                        continue
                    self.verdicts.pop(id(cell), None)
                    changed = True

    # -- one task instance --

    def _verdict(self, task: TaskSpec, cell: _Cell) -> _Verdict:
        setup = self._setup_constraint(task, cell)
        if setup.state is not None:
            return setup
        direct = self._trigger_rule(task, cell)
        if direct.state is not None or not direct.ready:
            return direct
        if not setup.ready:
            return setup
        if cell.index == NO_MAP_INDEX and task.needs_expansion:
            mapped = self._mapped_dependencies(task)
            if not mapped.ready:
                return mapped
        return self._past_constraint(task)

    def _relevant_upstream(self, task: TaskSpec, cell: _Cell, upstream_id: str) -> list[_Cell]:
        """The upstream task instances one task instance depends on: within their shared mapped task group
        only the same map index (or the upstream's still unexpanded placeholder), otherwise all of them."""
        cells = self.by_task.get(upstream_id, [])
        if task.mapped_group is not None and self.spec.tasks[upstream_id].mapped_group == task.mapped_group:
            return [c for c in cells if c.index in (cell.index, NO_MAP_INDEX)]
        return cells

    def _counts(self, task: TaskSpec, cell: _Cell, upstream_ids: list[str]) -> _Counts:
        if task.mapped_group is None:
            key = (task.task_id, *upstream_ids)
            versions = tuple(self.versions[u] for u in upstream_ids)
            cached = self.count_cache.get(key)
            if cached is not None and cached[0] == versions:
                return cached[1]
            counts = self._count(task, cell, upstream_ids)
            self.count_cache[key] = (versions, counts)
            return counts
        return self._count(task, cell, upstream_ids)

    def _count(self, task: TaskSpec, cell: _Cell, upstream_ids: list[str]) -> _Counts:
        counts = _Counts()
        for upstream_id in upstream_ids:
            is_setup = self.spec.tasks[upstream_id].is_setup
            for up in self._relevant_upstream(task, cell, upstream_id):
                counts.add(up.state, is_setup)
        return counts

    def _setup_constraint(self, task: TaskSpec, cell: _Cell) -> _Verdict:
        """Airflow: a work task also waits for its relevant indirect setups, and is upstream_failed /
        skipped as soon as one of them is failed / skipped."""
        setups = self.spec.relevant_setups.get(task.task_id)
        indirect = sorted(setups - task.upstream) if setups else []
        if not indirect:
            return _READY
        c = self._counts(task, cell, indirect)
        if c.failed or c.upstream_failed:
            return _Verdict(state=S.UPSTREAM_FAILED)
        if c.skipped:
            return _Verdict(state=S.SKIPPED)
        if c.upstream - c.success - (c.removed if cell.index >= 0 else 0) > 0:
            return _Verdict(reason=f"its setup tasks ({', '.join(indirect)}) have not all succeeded")
        return _READY

    def _trigger_rule(self, task: TaskSpec, cell: _Cell) -> _Verdict:
        rule = task.trigger_rule
        if not task.upstream or rule == "always":
            return _READY
        c = self._counts(task, cell, sorted(task.upstream))
        done = c.done >= c.upstream
        new_state = _rule_state(rule, c, done, cell.index)
        if new_state is not None:
            return _Verdict(state=new_state)
        met, why = _rule_met(rule, c, done, cell.index >= 0)
        return _READY if met else _Verdict(reason=f"trigger rule {rule} {why} ({c.describe()})")

    def _mapped_dependencies(self, task: TaskSpec) -> _Verdict:
        """Airflow's MappedTaskUpstreamDep: the tasks feeding the expand input must all have succeeded; one
        skipped skips the mapped task, one failed fails it upstream."""
        deps = self.spec.expansion_dependencies(task.task_id)
        states = [c.state for d in sorted(deps) for c in self.by_task.get(d, [])]
        if not all(s in FINISHED for s in states):
            return _Verdict(reason="the tasks its expand input comes from have not finished")
        if all(s == S.SUCCESS for s in states):
            return _READY
        return _Verdict(state=S.SKIPPED if S.SKIPPED in states else S.UPSTREAM_FAILED)

    def _past_constraint(self, task: TaskSpec) -> _Verdict:
        """depends_on_past (Airflow 3): every task instance of the task in the previous run succeeded or
        was skipped; with wait_for_downstream, those of its direct downstream tasks too. A task absent
        from the previous run passes (ignore_first_depends_on_past)."""
        if not task.depends_on_past or self.past is None:
            return _READY
        states = self.past.states.get(task.task_id, ())
        if any(s not in SUCCESSFUL for s in states):
            return _Verdict(
                reason="depends_on_past: its task instance in the previous run has not succeeded "
                f"({', '.join(sorted(set(states) - SUCCESSFUL))})",
                external=not all(s in FINISHED for s in states),
            )
        if task.wait_for_downstream and states:
            downstream = [s for d in sorted(task.downstream) for s in self.past.states.get(d, ())]
            if any(s not in SUCCESSFUL for s in downstream):
                return _Verdict(
                    reason="wait_for_downstream: the tasks downstream of it in the previous run have not "
                    f"all succeeded ({', '.join(sorted(set(downstream) - SUCCESSFUL))})",
                    external=not all(s in FINISHED for s in downstream),
                )
        return _READY

    def _expand(self, task: TaskSpec, cell: _Cell) -> None:
        """The placeholder becomes map index 0 and rows 1..n-1 are added; zero items skip the task, a
        missing or unmappable value fails it upstream (Airflow's expand_mapped_task)."""
        try:
            length = map_length(self.spec, task.task_id, self.xcoms)
        except ValueError as error:
            self._set(cell, S.UPSTREAM_FAILED)
            self.decisions.notes[cell.label] = f"cannot expand: {error}"
            return
        if length == 0:
            self._set(cell, S.SKIPPED)
            return
        cell.new_map_index = 0
        self.versions[task.task_id] += 1
        for index in range(1, length):
            self._add(_Cell(task.task_id, index, S.NONE, S.NONE, is_new=True))

    # -- the run --

    def _decide_run_state(self) -> None:
        """Airflow's DagRun.update_state: all finished → failed if an effective leaf failed, else success;
        nothing can ever progress → failed (deadlock, with the reason); otherwise running."""
        unfinished = [c for c in self.cells if c.state not in FINISHED]
        if not unfinished:
            leaves = [
                c for c in self.cells if c.task_id in self.spec.effective_leaves and c.state != S.REMOVED
            ]
            failed = any(c.state in FAILED_STATES for c in leaves)
            self.decisions.run_state = DagRunState.FAILED if failed else DagRunState.SUCCESS
            if failed:
                self.decisions.failure_reason = "task failure: " + ", ".join(
                    c.label for c in leaves if c.state in FAILED_STATES
                )
            return
        if all(c.state == S.NONE for c in unfinished):
            verdicts = [self.verdicts.get(id(c), _Verdict(reason="blocked")) for c in unfinished]
            if not any(v.external for v in verdicts):
                reasons = [f"{c.label}: {v.reason}" for c, v in zip(unfinished, verdicts, strict=True)]
                more = f" (and {len(reasons) - 5} more)" if len(reasons) > 5 else ""
                self.decisions.run_state = DagRunState.FAILED
                self.decisions.failure_reason = (
                    "deadlock: no task instance can ever run; " + "; ".join(reasons[:5]) + more
                )
                return
        if self.run_state == DagRunState.QUEUED:
            self.decisions.run_state = DagRunState.RUNNING

    def _collect(self) -> Decisions:
        for cell in self.cells:
            if cell.is_new:
                self.decisions.creates.append(NewTI(cell.task_id, cell.index, cell.state))
            elif cell.state != cell.orig_state or cell.new_map_index is not None:
                self.decisions.changes.append(
                    TIChange(
                        pk=cell.pk,
                        task_id=cell.task_id,
                        map_index=cell.map_index,
                        old_state=cell.orig_state,
                        new_state=cell.state,
                        new_map_index=cell.new_map_index,
                        try_number=cell.try_number,
                    )
                )
            if cell.state == S.NONE and id(cell) in self.verdicts:
                self.decisions.waiting[(cell.task_id, cell.index)] = self.verdicts[id(cell)].reason
        if self.decisions.run_state == self.run_state:
            self.decisions.run_state = None
        return self.decisions


@dataclass
class _Counts:
    upstream: int = 0
    success: int = 0
    skipped: int = 0
    failed: int = 0
    upstream_failed: int = 0
    removed: int = 0
    done: int = 0
    upstream_setup: int = 0
    success_setup: int = 0
    skipped_setup: int = 0

    def add(self, state: str, is_setup: bool) -> None:
        self.upstream += 1
        self.upstream_setup += is_setup
        if state not in FINISHED:
            return
        self.done += 1
        if state == S.SUCCESS:
            self.success += 1
            self.success_setup += is_setup
        elif state == S.SKIPPED:
            self.skipped += 1
            self.skipped_setup += is_setup
        elif state == S.FAILED:
            self.failed += 1
        elif state == S.UPSTREAM_FAILED:
            self.upstream_failed += 1
        elif state == S.REMOVED:
            self.removed += 1

    def describe(self) -> str:
        return (
            f"upstream {self.upstream}: success {self.success}, skipped {self.skipped}, failed {self.failed}, "
            f"upstream_failed {self.upstream_failed}, done {self.done}"
        )


def _rule_state(rule: str, c: _Counts, done: bool, map_index: int) -> str | None:
    """The state Airflow's TriggerRuleDep sets for `rule` given the upstream counts (flag_upstream_failed),
    or None when the task instance keeps waiting or may run."""
    if rule == "all_success":
        if c.upstream_failed or c.failed:
            return S.UPSTREAM_FAILED
        if c.skipped:
            return S.SKIPPED
        if c.removed and c.success and map_index >= 0 and map_index >= c.success:
            return S.REMOVED
    elif rule == "all_failed":
        if c.success or c.skipped:
            return S.SKIPPED
    elif rule == "one_success":
        if done and c.done == c.skipped:
            return S.SKIPPED
        if done and c.success <= 0:
            return S.UPSTREAM_FAILED
    elif rule == "one_failed":
        if done and not (c.failed or c.upstream_failed):
            return S.SKIPPED
    elif rule == "one_done":
        if done and not (c.failed or c.success):
            return S.SKIPPED
    elif rule == "none_failed":
        if c.upstream_failed or c.failed:
            return S.UPSTREAM_FAILED
    elif rule == "none_failed_min_one_success":
        if c.upstream_failed or c.failed:
            return S.UPSTREAM_FAILED
        if c.skipped == c.upstream:
            return S.SKIPPED
    elif rule == "none_skipped":
        if c.skipped:
            return S.SKIPPED
    elif rule == "all_skipped":
        if c.success or c.failed or c.upstream_failed:
            return S.SKIPPED
    elif rule == "all_done_min_one_success":
        if c.skipped > 0:
            return S.SKIPPED
        if c.success + c.failed + c.upstream_failed + c.removed >= c.upstream - c.skipped and c.success == 0:
            return S.UPSTREAM_FAILED
    elif rule == "all_done_setup_success":
        if done and c.upstream_setup and c.skipped_setup >= c.upstream_setup:
            return S.SKIPPED
        if done and c.upstream_setup and c.success_setup == 0:
            return S.UPSTREAM_FAILED
    return None


def _rule_met(rule: str, c: _Counts, done: bool, mapped: bool) -> tuple[bool, str]:
    """Whether `rule` lets the task instance run now (Airflow's TriggerRuleDep), and if not, why."""
    removed = c.removed if mapped else 0
    if rule == "one_success":
        return c.success > 0, "needs one upstream success"
    if rule == "one_failed":
        return bool(c.failed or c.upstream_failed), "needs one upstream failure"
    if rule == "one_done":
        return c.success + c.failed > 0, "needs one upstream success or failure"
    if rule == "all_success":
        return c.upstream - c.success - removed <= 0, "needs every upstream to succeed"
    if rule == "all_failed":
        return c.upstream - c.failed - c.upstream_failed - removed <= 0, "needs every upstream to fail"
    if rule == "all_done":
        return done, "needs every upstream to finish"
    if rule == "all_skipped":
        return c.upstream - c.skipped <= 0, "needs every upstream to be skipped"
    if rule in ("none_failed", "none_failed_min_one_success"):
        return c.upstream - c.success - c.skipped - removed <= 0, "needs every upstream to succeed or skip"
    if rule == "none_skipped":
        return done and not c.skipped, "needs every upstream to finish without a skip"
    if rule == "all_done_setup_success":
        if not done:
            return False, "needs every upstream to finish"
        return not (c.upstream_setup and not c.success_setup), "needs one upstream setup to succeed"
    if rule == "all_done_min_one_success":
        non_skipped_done = c.success + c.failed + c.upstream_failed + c.removed - removed
        if c.skipped > 0 or non_skipped_done < c.upstream - c.skipped - removed:
            return False, "needs every non-skipped upstream to finish"
        return c.success > 0, "needs one upstream success"
    return False, f"no strategy for trigger rule {rule!r}"


# --- Outcomes: retries, branching, short-circuit; priority weights ----------------------------------------


def retry_delay(task: TaskSpec, try_number: int, *, seed: str) -> timedelta:
    """How long a failed try waits before the next one (Airflow's formula): retry_delay, or with
    retry_exponential_backoff retry_delay × 2^(try_number-1) with a deterministic jitter of up to the same
    again (seeded by the task instance and try), capped at 24 h and at max_retry_delay."""
    delay = task.retry_delay_s
    if task.retry_exponential_backoff:
        min_backoff = max(1, math.ceil(delay * (2 ** max(try_number - 1, 0))))
        digest = int(hashlib.sha1(f"{seed}#{try_number}".encode()).hexdigest(), 16)
        delay = min(min_backoff + digest % min_backoff, MAX_RETRY_DELAY_S)
    if task.max_retry_delay_s is not None:
        delay = min(delay, task.max_retry_delay_s)
    return timedelta(seconds=delay)


def next_retry_at(task: TaskSpec, try_number: int, ended_at: datetime, *, seed: str) -> datetime:
    """When the next try of a task instance whose try `try_number` failed at `ended_at` may start."""
    return ended_at + retry_delay(task, try_number, seed=seed)


def can_retry(task: TaskSpec, try_number: int, max_tries: int | None = None) -> bool:
    """Whether a failed try `try_number` (1-based) is followed by another (Airflow: retries and
    try_number <= max_tries)."""
    tries = task.retries if max_tries is None else max_tries
    return tries > 0 and try_number <= tries


def skips_for_outcome(
    spec: DagSpec, task_id: str, map_index: int, outcome: Mapping[str, Any]
) -> list[tuple[str, int | None]]:
    """The task instances a successful branch or short-circuit outcome skips, as (task_id, map_index),
    map_index None meaning every instance of that task.

    Branch ("followed"): the direct downstream tasks not followed, where a task downstream of a followed
    one counts as followed (Airflow's skip_all_except); a task group id follows the group's roots.
    Short-circuit ("skip_downstream"): the listed tasks, and when trigger rules are not respected every
    task downstream of them too, teardowns excepted (ShortCircuitOperator)."""
    task = spec.tasks.get(task_id)
    if task is None:
        return []
    skip: set[str] = set()
    followed = outcome.get("followed")
    if followed is not None:
        follow: set[str] = set()
        for ref in [followed] if isinstance(followed, str) else followed:
            follow |= _resolve_task_ref(spec, ref)
        for ref in list(follow):
            follow |= spec.relatives(ref, upstream=False)
        skip |= {d for d in task.downstream if d not in follow}
    short = outcome.get("skip_downstream")
    if short:
        listed = {t for t in short.get("task_ids") or () if t in spec.tasks}
        if not short.get("respect_trigger_rules", False):
            for t in list(listed):
                listed |= spec.relatives(t, upstream=False)
            listed = {t for t in listed if not spec.tasks[t].is_teardown}
        skip |= listed
    index = map_index if map_index >= 0 else None
    return sorted((t, index) for t in skip)


def _resolve_task_ref(spec: DagSpec, ref: str) -> set[str]:
    if ref in spec.tasks:
        return {ref}
    members = spec.group_tasks.get(ref)
    if not members:
        return set()
    return {t for t in members if not (spec.tasks[t].upstream & members)}
