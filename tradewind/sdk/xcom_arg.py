"""Values resolved when a task runs: XComArg (a reference to another task's XCom), its .map/.zip/.concat
forms, DagParam (a reference to a DAG param) and MappedArgument (one expanded argument of a mapped task
group).

Every such value is a `ResolveMixin`: template rendering replaces it by `value.resolve(context)`. XComArgs
are also dependency nodes: passing `t1.output` to another task's template field makes t1 upstream of it.

`resolve` pulls XComs through the SDK's execution client (`tradewind.sdk.execution.get_client()`), asking
for rows of the upstream task; a mapped upstream gives the list of all its map indexes' values in index
order, except inside the same mapped task group, where it gives the value of this task instance's index.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tradewind.sdk.edges import DependencyMixin, EdgeModifier
from tradewind.sdk.exceptions import AirflowException, XComNotFound
from tradewind.sdk.params import NOTSET, ArgNotSet

if TYPE_CHECKING:
    from tradewind.sdk.dag import DAG

XCOM_RETURN_KEY = "return_value"


class ResolveMixin:
    """A value that stands for something only known when a task runs."""

    __tradewind_resolvable__ = True

    def iter_references(self) -> Iterator[tuple[Any, str]]:
        """(operator, xcom key) pairs this value reads."""
        return iter(())

    def resolve(self, context: Mapping[str, Any]) -> Any:
        """The actual value, for the task instance in `context`."""
        raise NotImplementedError


class XComArg(ResolveMixin, DependencyMixin):
    """A reference to an XCom pushed by another task; `XComArg(op, key="return_value")` builds one.

    `arg["key"]` references another key of the same task; `arg.map(f)`, `arg.zip(*others)`,
    `arg.concat(*others)` transform the value lazily (for task mapping).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> XComArg:
        if cls is XComArg:
            return PlainXComArg(*args, **kwargs)
        return super().__new__(cls)

    @staticmethod
    def iter_xcom_references(arg: Any) -> Iterator[tuple[Any, str]]:
        """(operator, key) pairs referenced anywhere inside `arg` (lists, tuples, sets, dict values)."""
        if isinstance(arg, ResolveMixin):
            yield from arg.iter_references()
        elif isinstance(arg, list | tuple | set | frozenset):
            for item in arg:
                yield from XComArg.iter_xcom_references(item)
        elif isinstance(arg, dict):
            for item in arg.values():
                yield from XComArg.iter_xcom_references(item)

    @staticmethod
    def apply_upstream_relationship(op: Any, arg: Any) -> None:
        """Make every task referenced inside `arg` upstream of `op`."""
        for operator, _ in XComArg.iter_xcom_references(arg):
            op.set_upstream(operator)

    @property
    def roots(self) -> list[Any]:
        return [op for op, _ in self.iter_references()]

    @property
    def leaves(self) -> list[Any]:
        return [op for op, _ in self.iter_references()]

    def set_upstream(self, other: Any, edge_modifier: EdgeModifier | None = None) -> None:
        for operator, _ in self.iter_references():
            operator.set_upstream(other, edge_modifier)

    def set_downstream(self, other: Any, edge_modifier: EdgeModifier | None = None) -> None:
        for operator, _ in self.iter_references():
            operator.set_downstream(other, edge_modifier)

    def map(self, f: Callable[[Any], Any]) -> MapXComArg:
        """This value with `f` applied to each item (lazily, at run time)."""
        return MapXComArg(self, [f])

    def zip(self, *others: XComArg, fillvalue: Any = NOTSET) -> ZipXComArg:
        """Tuples of items taken in step from this and `others`; the shortest wins unless `fillvalue`."""
        return ZipXComArg([self, *others], fillvalue=fillvalue)

    def concat(self, *others: XComArg) -> ConcatXComArg:
        """This value's items followed by each of `others`' items."""
        return ConcatXComArg([self, *others])

    def as_setup(self) -> XComArg:
        """Mark the referenced task(s) as setup tasks."""
        for operator, _ in self.iter_references():
            operator.as_setup()
        return self

    def as_teardown(self, *, setups: Any = NOTSET, on_failure_fail_dagrun: Any = NOTSET) -> XComArg:
        """Mark the referenced task(s) as teardowns (see BaseOperator.as_teardown)."""
        for operator, _ in self.iter_references():
            operator.as_teardown(setups=setups, on_failure_fail_dagrun=on_failure_fail_dagrun)
        return self

    def __enter__(self) -> XComArg:
        for operator, _ in self.iter_references():
            operator.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for operator, _ in self.iter_references():
            operator.__exit__(*exc)

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("'XComArg' object is not iterable")

    def serialize(self) -> dict[str, Any]:
        """JSON-able description: see serialization's expand-input format."""
        raise NotImplementedError


def _is_mapped(operator: Any) -> bool:
    return bool(getattr(operator, "is_mapped", False)) or operator.get_closest_mapped_task_group() is not None


def _pull_rows(
    context: Mapping[str, Any], task_id: str, key: str, map_indexes: list[int] | None
) -> list[dict]:
    from tradewind.sdk.execution import get_client

    ti = context["ti"]
    return get_client().xcom_pull(
        dag_id=ti.dag_id, run_id=ti.run_id, task_ids=[task_id], key=key, map_indexes=map_indexes
    )


class PlainXComArg(XComArg):
    """The XCom `key` (default return_value) pushed by `operator`."""

    def __init__(self, operator: Any, key: str = XCOM_RETURN_KEY) -> None:
        self.operator = operator
        self.key = key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PlainXComArg):
            return NotImplemented
        return self.operator is other.operator and self.key == other.key

    def __hash__(self) -> int:
        return hash((id(self.operator), self.key))

    def __getitem__(self, item: str) -> PlainXComArg:
        if not isinstance(item, str):
            raise ValueError(f"XComArg only supports str lookup, received {type(item).__name__}")
        return PlainXComArg(operator=self.operator, key=item)

    def __repr__(self) -> str:
        if self.key == XCOM_RETURN_KEY:
            return f"XComArg({self.operator!r})"
        return f"XComArg({self.operator!r}, {self.key!r})"

    def __str__(self) -> str:
        dag_id = self.operator.dag_id if self.operator.has_dag() else None
        return (
            f"{{{{ task_instance.xcom_pull(task_ids='{self.operator.task_id}', dag_id='{dag_id}', "
            f"key='{self.key}') }}}}"
        )

    def iter_references(self) -> Iterator[tuple[Any, str]]:
        yield self.operator, self.key

    def map(self, f: Callable[[Any], Any]) -> MapXComArg:
        if self.key != XCOM_RETURN_KEY:
            raise ValueError("cannot map against non-return XCom")
        return super().map(f)

    def zip(self, *others: XComArg, fillvalue: Any = NOTSET) -> ZipXComArg:
        if self.key != XCOM_RETURN_KEY:
            raise ValueError("cannot map against non-return XCom")
        return super().zip(*others, fillvalue=fillvalue)

    def concat(self, *others: XComArg) -> ConcatXComArg:
        if self.key != XCOM_RETURN_KEY:
            raise ValueError("cannot concatenate non-return XCom")
        return super().concat(*others)

    def resolve(self, context: Mapping[str, Any]) -> Any:
        ti = context["ti"]
        task_id = self.operator.task_id
        single = True
        if not _is_mapped(self.operator):
            map_indexes: list[int] | None = [-1]
        else:
            current = getattr(ti, "task", None) or context.get("task")
            group = self.operator.get_closest_mapped_task_group()
            same_group = (
                group is not None
                and current is not None
                and current.get_closest_mapped_task_group() is group
                and getattr(ti, "map_index", -1) >= 0
            )
            map_indexes = [ti.map_index] if same_group else None
            single = same_group
        rows = _pull_rows(context, task_id, self.key, map_indexes)
        if not single:
            return [row["value"] for row in sorted(rows, key=lambda row: row["map_index"])]
        if rows:
            return rows[0]["value"]
        if self.key == XCOM_RETURN_KEY or getattr(self.operator, "multiple_outputs", False):
            return None
        raise XComNotFound(ti.dag_id, task_id, self.key)

    def serialize(self) -> dict[str, Any]:
        return {
            "xcom": {"task_id": self.operator.task_id, "key": self.key},
            "upstream_mapped": _is_mapped(self.operator),
        }


class _MapResult(Sequence[Any]):
    """A resolved value with callables applied item by item, on access."""

    def __init__(self, value: Sequence[Any] | dict[Any, Any], callables: list[Callable[[Any], Any]]) -> None:
        self.value = list(value.items()) if isinstance(value, dict) else value
        self.callables = callables

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        item = self.value[index]
        for f in self.callables:
            item = f(item)
        return item

    def __len__(self) -> int:
        return len(self.value)


class MapXComArg(XComArg):
    """An XComArg whose items pass through `callables` when read."""

    def __init__(self, arg: XComArg, callables: list[Callable[[Any], Any]]) -> None:
        self.arg = arg
        self.callables = callables

    def __repr__(self) -> str:
        return f"{self.arg!r}.map([{len(self.callables)} functions])"

    def iter_references(self) -> Iterator[tuple[Any, str]]:
        yield from self.arg.iter_references()

    def map(self, f: Callable[[Any], Any]) -> MapXComArg:
        return MapXComArg(self.arg, [*self.callables, f])

    def resolve(self, context: Mapping[str, Any]) -> Any:
        value = self.arg.resolve(context)
        if not isinstance(value, Sequence | dict) or isinstance(value, str):
            raise ValueError(f"XCom map expects sequence or dict, not {type(value).__name__}")
        return _MapResult(value, self.callables)

    def serialize(self) -> dict[str, Any]:
        return {"map": self.arg.serialize()}


class ZipXComArg(XComArg):
    """Tuples of items taken in step from several XComArgs."""

    def __init__(self, args: Sequence[XComArg], *, fillvalue: Any = NOTSET) -> None:
        if not args:
            raise ValueError("At least one input is required")
        self.args = list(args)
        self.fillvalue = fillvalue

    def __repr__(self) -> str:
        return f"{self.args[0]!r}.zip({', '.join(repr(a) for a in self.args[1:])})"

    def iter_references(self) -> Iterator[tuple[Any, str]]:
        for arg in self.args:
            yield from arg.iter_references()

    def resolve(self, context: Mapping[str, Any]) -> Any:
        values = [arg.resolve(context) for arg in self.args]
        for value in values:
            if not isinstance(value, Sequence | dict) or isinstance(value, str):
                raise ValueError(f"XCom zip expects sequence or dict, not {type(value).__name__}")
        if isinstance(self.fillvalue, ArgNotSet):
            return list(zip(*values, strict=False))
        return list(itertools.zip_longest(*values, fillvalue=self.fillvalue))

    def serialize(self) -> dict[str, Any]:
        return {
            "zip": [arg.serialize() for arg in self.args],
            "fillvalue": not isinstance(self.fillvalue, ArgNotSet),
        }


class ConcatXComArg(XComArg):
    """The items of several XComArgs, one after the other."""

    def __init__(self, args: Sequence[XComArg]) -> None:
        if not args:
            raise ValueError("At least one input is required")
        self.args = list(args)

    def __repr__(self) -> str:
        return f"{self.args[0]!r}.concat({', '.join(repr(a) for a in self.args[1:])})"

    def iter_references(self) -> Iterator[tuple[Any, str]]:
        for arg in self.args:
            yield from arg.iter_references()

    def concat(self, *others: XComArg) -> ConcatXComArg:
        return ConcatXComArg([*self.args, *others])

    def resolve(self, context: Mapping[str, Any]) -> Any:
        result: list[Any] = []
        for arg in self.args:
            value = arg.resolve(context)
            if not isinstance(value, Sequence | dict) or isinstance(value, str):
                raise ValueError(f"XCom concat expects sequence or dict, not {type(value).__name__}")
            result.extend(value.items() if isinstance(value, dict) else value)
        return result

    def serialize(self) -> dict[str, Any]:
        return {"concat": [arg.serialize() for arg in self.args]}


class DagParam(ResolveMixin):
    """A reference to DAG param `name` (what a `@dag` function's arguments become).

    Resolves to the run's conf value if present, else the given default, else the run's params value."""

    def __init__(self, current_dag: DAG, name: str, default: Any = NOTSET) -> None:
        if default is not NOTSET:
            current_dag.params[name] = default
        self._name = name
        self._default = default
        self.current_dag = current_dag

    def __repr__(self) -> str:
        return f"DagParam({self._name!r})"

    def resolve(self, context: Mapping[str, Any]) -> Any:
        dag_run = context.get("dag_run")
        conf = getattr(dag_run, "conf", None) or {}
        if self._name in conf:
            return conf[self._name]
        if self._default is not NOTSET:
            from tradewind.sdk.params import Param

            if isinstance(self._default, Param):
                return self._default.resolve()
            return self._default
        params = context.get("params") or {}
        if self._name in params:
            return params[self._name]
        raise AirflowException(f"No value could be resolved for parameter {self._name}")


class MappedArgument(ResolveMixin):
    """One expanded argument of a mapped task group: the value for this task instance's map index."""

    def __init__(self, *, input: Any, key: str) -> None:  # noqa: A002  (Airflow's keyword)
        self._input = input
        self._key = key

    def __repr__(self) -> str:
        return f"MappedArgument({self._key!r})"

    def iter_references(self) -> Iterator[tuple[Any, str]]:
        yield from self._input.iter_references()

    def resolve(self, context: Mapping[str, Any]) -> Any:
        return self._input.resolve(context)[self._key]
