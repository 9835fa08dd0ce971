"""Task groups: nested, optionally id-prefixing groups of tasks; the `@task_group` decorator; mapped groups.

Every DAG has a root group (group_id None). A group's `default_args` sit between the DAG's and a task's
own arguments; a nested group inherits its parent's. Groups are dependency nodes: `group >> task` draws
edges from the group's leaves, `task >> group` to its roots.
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from tradewind.sdk.edges import DependencyMixin, EdgeModifier, iter_nodes
from tradewind.sdk.exceptions import (
    AirflowException,
    AirflowValueError,
    DuplicateTaskIdFound,
    TaskAlreadyInTaskGroup,
)

if TYPE_CHECKING:
    from tradewind.sdk.dag import DAG

KEY_REGEX = re.compile(r"^[\w.-]+$")
GROUP_KEY_REGEX = re.compile(r"^[\w-]+$")


def validate_key(key: str, max_length: int = 250) -> None:
    """Raise unless `key` is a valid dag_id / task_id: at most 250 characters of letters, digits, ``_.-``."""
    if not isinstance(key, str):
        raise TypeError(f"The key has to be a string and is {type(key)}:{key}")
    if len(key) > max_length:
        raise AirflowValueError(f"The key has to be less than {max_length} characters, not {len(key)}")
    if not KEY_REGEX.match(key):
        raise AirflowValueError(
            f"The key {key!r} has to be made of alphanumeric characters, dashes, dots and underscores exclusively"
        )


def validate_group_key(key: str, max_length: int = 200) -> None:
    """Raise unless `key` is a valid group_id (like a task id, but without dots)."""
    if not isinstance(key, str):
        raise TypeError(f"The key has to be a string and is {type(key)}:{key}")
    if len(key) > max_length:
        raise AirflowValueError(f"The key has to be less than {max_length} characters, not {len(key)}")
    if not GROUP_KEY_REGEX.match(key):
        raise AirflowValueError(
            f"The key {key!r} has to be made of alphanumeric characters, dashes and underscores exclusively"
        )


class TaskGroupContext:
    """The stack of task groups opened with ``with TaskGroup(...)``."""

    _stack: ClassVar[list[TaskGroup]] = []

    @classmethod
    def push(cls, task_group: TaskGroup) -> None:
        """Make `task_group` the current group."""
        cls._stack.append(task_group)

    @classmethod
    def pop(cls) -> TaskGroup | None:
        """Close the current group and return it."""
        return cls._stack.pop() if cls._stack else None

    @classmethod
    def get_current(cls, dag: DAG | None = None) -> TaskGroup | None:
        """The innermost open group, else `dag`'s root group, else None."""
        if cls._stack:
            return cls._stack[-1]
        return dag.task_group if dag is not None else None

    push_context_managed_task_group = push
    pop_context_managed_task_group = pop
    get_current_task_group = get_current


def _is_task(node: Any) -> bool:
    return not isinstance(node, TaskGroup)


class TaskGroup(DependencyMixin):
    """A group of tasks (and groups) shown together; with `prefix_group_id` its children's ids are
    prefixed with ``<group_id>.``."""

    is_mapped: ClassVar[bool] = False

    def __init__(
        self,
        group_id: str | None,
        prefix_group_id: bool = True,
        parent_group: TaskGroup | None = None,
        dag: DAG | None = None,
        default_args: dict[str, Any] | None = None,
        tooltip: str = "",
        ui_color: str = "CornflowerBlue",
        ui_fgcolor: str = "#000",
        add_suffix_on_collision: bool = False,
        group_display_name: str = "",
    ) -> None:
        from tradewind.sdk.dag import DagContext

        self.prefix_group_id = prefix_group_id
        self.default_args: dict[str, Any] = copy.deepcopy(default_args or {})
        self.tooltip = tooltip
        self.ui_color = ui_color
        self.ui_fgcolor = ui_fgcolor
        self.group_display_name = group_display_name
        self.children: dict[str, Any] = {}
        self.upstream_group_ids: set[str | None] = set()
        self.downstream_group_ids: set[str | None] = set()
        self.upstream_task_ids: set[str] = set()
        self.downstream_task_ids: set[str] = set()
        self.task_group: TaskGroup | None = None

        if group_id is None:
            if parent_group is not None:
                raise AirflowException("Root TaskGroup cannot have parent_group")
            self._group_id: str | None = None
            self.dag = dag
            self.used_group_ids: set[str | None] = set()
            return

        if prefix_group_id:
            validate_group_key(group_id)
        elif not isinstance(group_id, str) or not group_id:
            raise ValueError("group_id must be a non-empty str")
        dag = dag or (parent_group.dag if parent_group is not None else None) or DagContext.get_current()
        if parent_group is None and dag is None:
            raise AirflowException("TaskGroup can only be used inside a dag")
        parent_group = parent_group or TaskGroupContext.get_current(dag)
        if parent_group is None:
            raise AirflowException("TaskGroup must have a parent_group except for the root TaskGroup")
        if dag is not parent_group.dag:
            raise RuntimeError(f"Cannot mix TaskGroups from different DAGs: {dag} and {parent_group.dag}")
        self.dag = dag
        self.used_group_ids = parent_group.used_group_ids
        self._group_id = group_id
        self.task_group = parent_group
        if self.group_id in self.used_group_ids:
            if not add_suffix_on_collision:
                raise DuplicateTaskIdFound(f"group_id '{self._group_id}' has already been added to the DAG")
            base = re.split(r"__\d+$", group_id)[0]
            suffixes = sorted(
                int(re.split(r"^.+__", used)[1])
                for used in self.used_group_ids
                if used is not None and re.match(rf"^{re.escape(parent_group.child_id(base))}__\d+$", used)
            )
            self._group_id = f"{base}__{suffixes[-1] + 1 if suffixes else 1}"
        self.used_group_ids.add(self.group_id)
        if self.dag is not None and self.group_id in self.dag.task_dict:
            raise DuplicateTaskIdFound(f"group_id '{self.group_id}' has already been added to the DAG")
        parent_group.add(self)
        if parent_group.default_args:
            self.default_args = {**parent_group.default_args, **self.default_args}

    @classmethod
    def create_root(cls, dag: DAG) -> TaskGroup:
        """The root group of `dag`."""
        return cls(group_id=None, dag=dag)

    @property
    def parent_group(self) -> TaskGroup | None:
        """The enclosing group (None for the root)."""
        return self.task_group

    @property
    def node_id(self) -> str | None:
        return self.group_id

    @property
    def is_root(self) -> bool:
        """Whether this is a DAG's root group."""
        return self._group_id is None

    @property
    def group_id(self) -> str | None:
        """The full id: the parent's prefix (if the parent prefixes) plus this group's own id."""
        parent = self.task_group
        if parent is not None and parent.prefix_group_id and parent._group_id:
            return parent.child_id(self._group_id)  # type: ignore[arg-type]
        return self._group_id

    @property
    def label(self) -> str | None:
        """The group's own id, without any prefix."""
        return self._group_id

    def child_id(self, label: str) -> str:
        """The id a child labelled `label` gets in this group."""
        if self.prefix_group_id:
            group_id = self.group_id
            if group_id:
                return f"{group_id}.{label}"
        return label

    def add(self, node: Any) -> Any:
        """Put a task or group into this group; DuplicateTaskIdFound if its id is taken here."""
        if _is_task(node):
            existing = node.task_group
            if existing is not None and existing is not self and not existing.is_root:
                raise TaskAlreadyInTaskGroup(node.node_id, existing.node_id, self.node_id)
            if existing is not None and existing is not self:
                existing.children.pop(node.node_id, None)
            node.task_group = self
        key = node.node_id
        if key in self.children and self.children[key] is not node:
            kind = "Task" if _is_task(node) else "Task Group"
            raise DuplicateTaskIdFound(f"{kind} id '{key}' has already been added to the DAG")
        self.children[key] = node
        return node

    def __iter__(self) -> Iterator[Any]:
        """Every task in this group and its subgroups."""
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                yield from child
            else:
                yield child

    def iter_tasks(self) -> Iterator[Any]:
        """Every task in this group and its subgroups."""
        return iter(self)

    def has_task(self, task: Any) -> bool:
        """Whether `task` is in this group or a subgroup."""
        return any(t is task for t in self)

    def get_task_group_dict(self) -> dict[str | None, TaskGroup]:
        """group_id -> group for this group and every subgroup."""
        result: dict[str | None, TaskGroup] = {self.group_id: self}
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                result.update(child.get_task_group_dict())
        return result

    def get_child_by_label(self, label: str) -> Any:
        """The direct child whose id (without prefix) is `label`."""
        return self.children[self.child_id(label)]

    def get_roots(self) -> Iterator[Any]:
        """Tasks of the group with no upstream task inside the group."""
        tasks = list(self)
        ids = {t.node_id for t in tasks}
        for task in tasks:
            if task.upstream_task_ids.isdisjoint(ids):
                yield task

    def get_leaves(self) -> Iterator[Any]:
        """Tasks of the group with no downstream task inside the group; a teardown does not count as a
        leaf: the work tasks before it do."""
        tasks = list(self)
        ids = {t.node_id for t in tasks}
        by_id = {t.node_id: t for t in tasks}

        def has_work_downstream(task: Any, exclude: str) -> bool:
            for down_id in task.downstream_task_ids:
                if down_id != exclude and down_id in ids and not by_id[down_id].is_teardown:
                    return True
            return False

        def first_work_upstream(task: Any) -> Iterator[Any]:
            for up_id in task.upstream_task_ids:
                up = by_id.get(up_id)
                if up is None:
                    continue
                if up.is_teardown:
                    yield from first_work_upstream(up)
                elif task.is_teardown and up.is_setup:
                    continue
                elif not has_work_downstream(up, exclude=task.node_id):
                    yield up

        for task in tasks:
            if task.downstream_task_ids.isdisjoint(ids):
                if not task.is_teardown:
                    yield task
                else:
                    yield from first_work_upstream(task)

    @property
    def roots(self) -> list[Any]:
        return list(self.get_roots())

    @property
    def leaves(self) -> list[Any]:
        return list(self.get_leaves())

    def update_relative(
        self, other: Any, upstream: bool = True, edge_modifier: EdgeModifier | None = None
    ) -> None:
        if isinstance(other, TaskGroup):
            (self.upstream_group_ids if upstream else self.downstream_group_ids).add(other.group_id)
        else:
            for task in other.leaves if upstream else other.roots:
                (self.upstream_task_ids if upstream else self.downstream_task_ids).add(task.node_id)

    def _set_relatives(self, others: Any, *, upstream: bool, edge_modifier: EdgeModifier | None) -> None:
        nodes = list(iter_nodes(others))
        for node in nodes:
            self.update_relative(node, upstream, edge_modifier=edge_modifier)
            if isinstance(node, TaskGroup):
                node.update_relative(self, not upstream, edge_modifier=edge_modifier)
        if upstream:
            for task in self.get_roots():
                task.set_upstream(nodes, edge_modifier)
        else:
            for task in list(self.get_leaves()):
                task.set_downstream(nodes, edge_modifier)

    def set_upstream(self, other: Any, edge_modifier: EdgeModifier | None = None) -> None:
        self._set_relatives(other, upstream=True, edge_modifier=edge_modifier)

    def set_downstream(self, other: Any, edge_modifier: EdgeModifier | None = None) -> None:
        self._set_relatives(other, upstream=False, edge_modifier=edge_modifier)

    def __enter__(self) -> TaskGroup:
        TaskGroupContext.push(self)
        return self

    def __exit__(self, *exc: object) -> None:
        TaskGroupContext.pop()

    def iter_mapped_task_groups(self) -> Iterator[MappedTaskGroup]:
        """This group (if mapped) and its enclosing mapped groups, innermost first."""
        group: TaskGroup | None = self
        while group is not None:
            if isinstance(group, MappedTaskGroup):
                yield group
            group = group.task_group

    def topological_sort(self) -> list[Any]:
        """Direct children (tasks and groups) ordered so that every child comes after its upstream ones."""
        from tradewind.sdk.dag import topological_order

        children = list(self.children.values())

        def members(child: Any) -> list[Any]:
            return list(child) if isinstance(child, TaskGroup) else [child]

        owner = {t.node_id: i for i, child in enumerate(children) for t in members(child)}
        deps: dict[int, set[int]] = {i: set() for i in range(len(children))}
        for i, child in enumerate(children):
            for task in members(child):
                for up in task.upstream_task_ids:
                    j = owner.get(up)
                    if j is not None and j != i:
                        deps[i].add(j)
        return [children[i] for i in topological_order(list(deps), deps)]

    def __repr__(self) -> str:
        return f"<TaskGroup: {self.group_id}>"


class MappedTaskGroup(TaskGroup):
    """A task group expanded at run time: every task in it runs once per item of `expand_input`."""

    is_mapped: ClassVar[bool] = True

    def __init__(self, group_id: str | None, *, expand_input: Any, **kwargs: Any) -> None:
        super().__init__(group_id, **kwargs)
        self._expand_input = expand_input

    @property
    def expand_input(self) -> Any:
        """The group's ExpandInput (see tradewind.sdk.mappedoperator)."""
        return self._expand_input

    def __exit__(self, *exc: object) -> None:
        for operator, _ in self._expand_input.iter_references():
            self.set_upstream(operator)
        super().__exit__(*exc)


class _TaskGroupFactory:
    """What `@task_group` turns a function into: calling it builds a group around the function's tasks."""

    def __init__(
        self,
        function: Callable[..., Any],
        tg_kwargs: dict[str, Any],
        partial_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.function = function
        self.tg_kwargs = tg_kwargs
        self.partial_kwargs = partial_kwargs or {}
        functools.update_wrapper(self, function)

    def override(self, **kwargs: Any) -> _TaskGroupFactory:
        """The same group factory with some TaskGroup arguments replaced."""
        return _TaskGroupFactory(self.function, {**self.tg_kwargs, **kwargs}, self.partial_kwargs)

    def _validate_arg_names(self, func: str, kwargs: Mapping[str, Any]) -> None:
        parameters = inspect.signature(self.function).parameters
        if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            return
        for name in kwargs:
            if name not in parameters:
                raise TypeError(f"{func}() got an unexpected keyword argument {name!r}")

    def _create(self, factory: Callable[..., TaskGroup], *args: Any, **kwargs: Any) -> Any:
        tg_kwargs = dict(self.tg_kwargs)
        group_id = tg_kwargs.pop("group_id", None) or self.function.__name__
        tg_kwargs.setdefault("add_suffix_on_collision", True)
        with factory(group_id, **tg_kwargs) as group:
            if self.function.__doc__ and not group.tooltip:
                group.tooltip = self.function.__doc__
            result = self.function(*args, **kwargs)
        # Whatever the function returns (a task, an XComArg, a list of them) is what later dependencies bind
        # to, as in Airflow; the whole group only when it returns nothing.
        return group if result is None else result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._create(TaskGroup, *args, **{**self.partial_kwargs, **kwargs})

    def partial(self, **kwargs: Any) -> _TaskGroupFactory:
        """Fix some arguments before `expand`."""
        self._validate_arg_names("partial", kwargs)
        return _TaskGroupFactory(self.function, self.tg_kwargs, {**self.partial_kwargs, **kwargs})

    def expand(self, **kwargs: Any) -> Any:
        """Build a mapped task group: one copy of the group per item (cross product over the kwargs)."""
        from tradewind.sdk.mappedoperator import DictOfListsExpandInput, is_mappable_value
        from tradewind.sdk.xcom_arg import MappedArgument

        if not kwargs:
            raise TypeError("no arguments to expand against")
        self._validate_arg_names("expand", kwargs)
        duplicated = set(self.partial_kwargs) & set(kwargs)
        if duplicated:
            raise TypeError(f"mapping already partial argument: {', '.join(sorted(duplicated))}")
        for name, value in kwargs.items():
            if not is_mappable_value(value):
                raise ValueError(
                    f"expand() got an unexpected type {type(value).__name__!r} for keyword argument {name}"
                )
        expand_input = DictOfListsExpandInput(kwargs)
        mapped_args = {name: MappedArgument(input=expand_input, key=name) for name in kwargs}
        factory = functools.partial(MappedTaskGroup, expand_input=expand_input)
        return self._create(factory, **self.partial_kwargs, **mapped_args)

    def expand_kwargs(self, kwargs: Any) -> Any:
        """Build a mapped task group from a list of argument dicts (or an XComArg giving one)."""
        from tradewind.sdk.mappedoperator import ListOfDictsExpandInput

        expand_input = ListOfDictsExpandInput.checked(kwargs)
        names = [p for p in inspect.signature(self.function).parameters if p not in self.partial_kwargs]
        from tradewind.sdk.xcom_arg import MappedArgument

        mapped_args = {name: MappedArgument(input=expand_input, key=name) for name in names}
        factory = functools.partial(MappedTaskGroup, expand_input=expand_input)
        return self._create(factory, **self.partial_kwargs, **mapped_args)


def task_group(python_callable: Callable[..., Any] | str | None = None, **tg_kwargs: Any) -> Any:
    """Decorator: `@task_group`, `@task_group()` or `@task_group(group_id=..., tooltip=..., ...)`.

    Calling the decorated function creates a TaskGroup (id: `group_id` or the function name, suffixed
    ``__1``, ``__2``... on reuse) and runs the function inside it; the call returns the task the function
    returned, else the group. `.expand()` / `.expand_kwargs()` build a mapped task group."""
    if isinstance(python_callable, str):
        tg_kwargs["group_id"] = python_callable
        python_callable = None
    if callable(python_callable):
        return _TaskGroupFactory(python_callable, tg_kwargs)
    return functools.partial(_TaskGroupFactory, tg_kwargs=tg_kwargs)
