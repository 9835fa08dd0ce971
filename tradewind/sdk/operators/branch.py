"""Branching and skipping: SkipMixin, BranchMixIn and BaseBranchOperator.

A task cannot change other task instances from its sandbox: what it decides is recorded on its task
instance and reported in the run outcome ("followed" for branches, "skip_downstream" for skips), and the
scheduler applies it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tradewind.sdk.baseoperator import BaseOperator
from tradewind.sdk.exceptions import AirflowException


def _task_dict(dag: Any) -> Mapping[str, Any]:
    return getattr(dag, "task_dict", None) or {}


def _task_group_dict(dag: Any) -> Mapping[str, Any]:
    groups = getattr(dag, "task_group_dict", None)
    if isinstance(groups, Mapping):
        return groups
    root = getattr(dag, "task_group", None)
    getter = getattr(root, "get_task_group_dict", None)
    return getter() if callable(getter) else {}


def downstream_closure(dag: Any, task_ids: Iterable[str]) -> set[str]:
    """Every task downstream of any of `task_ids`, transitively (not including them)."""
    tasks = _task_dict(dag)
    seen: set[str] = set()
    pending = list(task_ids)
    while pending:
        task = tasks.get(pending.pop())
        if task is None:
            continue
        for child in getattr(task, "downstream_task_ids", ()):
            if child not in seen:
                seen.add(child)
                pending.append(child)
    return seen


def _current_ti(args: tuple[Any, ...]) -> Any:
    for arg in args:
        if hasattr(arg, "skipped_task_ids"):
            return arg
    from tradewind.sdk.context import get_current_context

    return get_current_context()["ti"]


def _task_ids(tasks: Iterable[Any]) -> list[str]:
    ids = []
    for task in tasks:
        if isinstance(task, str):
            ids.append(task)
        elif isinstance(task, tuple):
            ids.append(task[0])
        else:
            ids.append(task.task_id)
    return ids


class SkipMixin:
    """Lets an operator skip downstream tasks (Airflow's SkipMixin), through the run outcome."""

    def skip(self, *args: Any, tasks: Iterable[Any] | None = None, **kwargs: Any) -> None:
        """Skip `tasks` (operators or task ids). Accepts Airflow 2's `skip(dag_run, execution_date, tasks)`
        and Airflow 3's `skip(ti, tasks)`."""
        if tasks is None:
            if not args:
                raise TypeError("skip() needs the tasks to skip")
            tasks = args[-1]
            args = args[:-1]
        ids = _task_ids(tasks or [])
        if ids:
            _current_ti(args).skipped_task_ids.extend(ids)

    def skip_all_except(self, ti: Any, branch_task_ids: None | str | Iterable[str]) -> None:
        """Follow only `branch_task_ids` (task or task-group ids): of this task's direct downstream tasks,
        those that are a branch or downstream of one are followed, the others skipped."""
        if ti is None or not hasattr(ti, "skipped_task_ids"):
            ti = _current_ti(())
        task = ti.task
        dag = getattr(task, "dag", None) or ti.dag
        branches = expand_branch_ids(dag, branch_task_ids)
        reachable = set(branches) | downstream_closure(dag, branches)
        direct = sorted(getattr(task, "downstream_task_ids", ()))
        ti.followed = [task_id for task_id in direct if task_id in reachable]


def expand_branch_ids(dag: Any, branch_task_ids: None | str | Iterable[str]) -> list[str]:
    """Branch ids as task ids: task-group ids become the group's root tasks. AirflowException for an id
    that is neither a task nor a task group of the DAG."""
    if branch_task_ids is None:
        return []
    ids = [branch_task_ids] if isinstance(branch_task_ids, str) else list(branch_task_ids)
    for value in ids:
        if not isinstance(value, str):
            raise AirflowException(
                f"'branch_task_ids' must be either None, a task ID, or an Iterable of IDs, but got {value!r}."
            )
    tasks = _task_dict(dag)
    groups = _task_group_dict(dag)
    invalid = sorted(set(ids) - set(tasks) - set(groups))
    if invalid:
        raise AirflowException(
            f"'branch_task_ids' must contain only valid task_ids. Invalid tasks found: {invalid}."
        )
    expanded: list[str] = []
    for value in ids:
        if value in tasks:
            expanded.append(value)
            continue
        group = groups[value]
        roots = getattr(group, "roots", None)
        expanded.extend(_task_ids(roots) if roots is not None else [])
    return expanded


class BranchMixIn(SkipMixin):
    """`do_branch(context, branches)`: follow the chosen branches and skip the rest."""

    def do_branch(self, context: Mapping[str, Any], branches_to_execute: None | str | Iterable[str]) -> Any:
        """Follow `branches_to_execute` (None skips every direct downstream task) and return it."""
        self.skip_all_except(context["ti"], branches_to_execute)
        return branches_to_execute


class BaseBranchOperator(BaseOperator, BranchMixIn):
    """Base for branching operators: implement `choose_branch(context)` returning task id(s) to follow."""

    inherits_from_skipmixin = True

    def choose_branch(self, context: Mapping[str, Any]) -> str | Iterable[str] | None:
        """The task id(s) (or task group ids) to follow."""
        raise NotImplementedError

    def execute(self, context: Mapping[str, Any]) -> Any:
        """Choose and follow a branch; the choice is the task's return value."""
        return self.do_branch(context, self.choose_branch(context))
