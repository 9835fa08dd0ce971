"""The grid of a DAG page (runs × tasks, like Airflow's grid view), built from a DAG version's serialization
and the task instances of the runs shown. Pure: no queries, so the view decides what is loaded, once.

Rows follow the DAG's task groups (a group row, then its members indented), ordered by how deep each task
sits in the DAG so upstream tasks come first. A mapped task gets one cell per run summarising its instances
("3 × success"); a group's cell shows the state that matters most among its members', as Airflow does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scheduler.models import NO_MAP_INDEX

# Which state a summary shows when a group's or a mapped task's instances differ: the first one present
# (Airflow's order: trouble first, then work in progress, then nothing yet, then done).
STATE_PRIORITY = (
    "failed",
    "upstream_failed",
    "up_for_retry",
    "up_for_reschedule",
    "queued",
    "scheduled",
    "deferred",
    "running",
    "restarting",
    "none",
    "success",
    "skipped",
    "removed",
)
_RANK = {state: rank for rank, state in enumerate(STATE_PRIORITY)}


def summary_state(states: Iterable[str]) -> str | None:
    """The state a summary of these states shows (None when there are none)."""
    return min(states, key=lambda state: _RANK.get(state, len(_RANK)), default=None)


@dataclass(frozen=True)
class TIRow:
    """What the grid needs of one task instance."""

    run_pk: int
    task_id: str
    map_index: int
    state: str
    try_number: int


@dataclass
class Cell:
    """One run × one row: its state (None: no task instance), how many instances it stands for and, for a
    summary, how many are in each state."""

    state: str | None
    task_id: str | None = None
    map_index: int = NO_MAP_INDEX
    count: int = 0
    states: dict[str, int] = field(default_factory=dict)
    run_id: str = ""  # set by the view, with the page the cell opens
    url: str | None = None

    @property
    def title(self) -> str:
        """The tooltip: the state, or the count in each state for a summary."""
        if self.state is None:
            return "no task instance"
        if self.states and (self.count > 1 or len(self.states) > 1):
            return ", ".join(f"{n} {state}" for state, n in sorted(self.states.items(), key=_by_rank))
        return self.state


@dataclass
class Row:
    """A task or a task group of the grid, with one cell per run shown."""

    key: str  # task_id, or the group id
    label: str
    depth: int
    is_group: bool
    is_mapped: bool = False
    operator: str = ""
    cells: list[Cell] = field(default_factory=list)


def _by_rank(item: tuple[str, int]) -> int:
    return _RANK.get(item[0], len(_RANK))


def task_levels(tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """task_id -> length of the longest upstream path to it (roots are 0)."""
    levels: dict[str, int] = {}

    def level(task_id: str, seen: frozenset[str]) -> int:
        if task_id not in levels:
            upstream = [
                u for u in tasks[task_id].get("upstream_task_ids") or [] if u in tasks and u not in seen
            ]
            levels[task_id] = 1 + max((level(u, seen | {task_id}) for u in upstream), default=-1)
        return levels[task_id]

    for task_id in tasks:
        level(task_id, frozenset())
    return levels


def _group_tree(serialized: Mapping[str, Any], tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The serialization's task-group tree; a flat root group when it has none."""
    tree = serialized.get("task_groups")
    if isinstance(tree, Mapping):
        return dict(tree)
    return {"group_id": None, "label": None, "tasks": sorted(tasks), "groups": []}


def _members(group: Mapping[str, Any]) -> list[str]:
    found = list(group.get("tasks") or [])
    for child in group.get("groups") or []:
        found.extend(_members(child))
    return found


def grid_rows(serialized: Mapping[str, Any]) -> list[tuple[Row, list[str]]]:
    """The grid's rows for a DAG version, in display order, each with the task ids whose instances it shows
    (one for a task, every member for a group); no cells yet."""
    tasks = {task["task_id"]: task for task in serialized.get("tasks") or []}
    levels = task_levels(tasks)
    rows: list[tuple[Row, list[str]]] = []

    def order_key(item: tuple[str, Any]) -> tuple[int, str]:
        kind, value = item
        if kind == "task":
            return (levels.get(value, 0), value)
        members = _members(value)
        return (min((levels.get(t, 0) for t in members), default=0), value.get("group_id") or "")

    def walk(group: Mapping[str, Any], depth: int) -> None:
        items = [("task", t) for t in group.get("tasks") or [] if t in tasks]
        items += [("group", g) for g in group.get("groups") or []]
        for kind, value in sorted(items, key=order_key):
            if kind == "task":
                task = tasks[value]
                row = Row(
                    key=value,
                    label=task.get("label") or value,
                    depth=depth,
                    is_group=False,
                    is_mapped=bool(task.get("is_mapped") or task.get("mapped_group_id")),
                    operator=task.get("operator_name") or task.get("operator") or "",
                )
                rows.append((row, [value]))
            else:
                members = [t for t in _members(value) if t in tasks]
                label = value.get("label") or value.get("group_id") or ""
                row = Row(key=value.get("group_id") or label, label=label, depth=depth, is_group=True)
                rows.append((row, members))
                walk(value, depth + 1)

    walk(_group_tree(serialized, tasks), 0)
    return rows


def _cell(instances: list[TIRow], *, single_task: bool) -> Cell:
    if not instances:
        return Cell(state=None)
    if single_task and len(instances) == 1:
        ti = instances[0]
        return Cell(state=ti.state, task_id=ti.task_id, map_index=ti.map_index, count=1, states={ti.state: 1})
    states = Counter(ti.state for ti in instances)
    return Cell(
        state=summary_state(states),
        task_id=instances[0].task_id if single_task else None,
        count=len(instances),
        states=dict(states),
    )


def build_grid(serialized: Mapping[str, Any], run_pks: list[int], tis: Iterable[TIRow]) -> list[Row]:
    """The rows of the grid of these runs (in column order), with one cell per run.

    A mapped task that has expanded is summarised over its map indexes (its unexpanded placeholder, map
    index -1, stands alone until then); a group over every instance of its members.
    """
    by_run_task: dict[tuple[int, str], list[TIRow]] = {}
    for ti in tis:
        by_run_task.setdefault((ti.run_pk, ti.task_id), []).append(ti)
    rows = []
    for row, members in grid_rows(serialized):
        for run_pk in run_pks:
            instances = [ti for task_id in members for ti in by_run_task.get((run_pk, task_id), [])]
            if not row.is_group:
                expanded = [ti for ti in instances if ti.map_index != NO_MAP_INDEX]
                instances = expanded or instances
            row.cells.append(_cell(instances, single_task=not row.is_group))
        rows.append(row)
    return rows
