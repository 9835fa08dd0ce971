"""Dependency edges: the protocol every graph node speaks (``>>``, ``<<``, set_upstream/set_downstream),
and edge labels (``a >> Label("on error") >> b``).

Tasks, task groups, XComArgs and labels all implement `DependencyMixin`. A node exposes `roots` (the
tasks that receive an edge drawn into it) and `leaves` (the tasks an edge drawn out of it starts from);
the real edges are always between tasks, recorded by the tasks themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class DependencyMixin:
    """A node that can stand on either side of ``>>`` and ``<<`` (alone or inside a list)."""

    @property
    def roots(self) -> list[Any]:
        """The tasks an edge drawn into this node attaches to."""
        raise NotImplementedError

    @property
    def leaves(self) -> list[Any]:
        """The tasks an edge drawn out of this node starts from."""
        raise NotImplementedError

    def set_upstream(self, other: Any, edge_modifier: EdgeModifier | None = None) -> None:
        """Make `other` (a node or a list of nodes) run before this node."""
        raise NotImplementedError

    def set_downstream(self, other: Any, edge_modifier: EdgeModifier | None = None) -> None:
        """Make `other` (a node or a list of nodes) run after this node."""
        raise NotImplementedError

    def update_relative(
        self, other: Any, upstream: bool = True, edge_modifier: EdgeModifier | None = None
    ) -> None:
        """Told that `other` became upstream (or downstream) of this node by `other`'s own call; tasks
        need nothing here, labels and task groups record it."""

    def __lshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return other

    def __rshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return other

    def __rrshift__(self, other: Any) -> Any:
        # `[a, b] >> self`: lists have no >> for nodes, so Python asks the right-hand side.
        self.__lshift__(other)
        return self

    def __rlshift__(self, other: Any) -> Any:
        self.__rshift__(other)
        return self


def iter_nodes(value: Any) -> Iterator[DependencyMixin]:
    """The dependency nodes in `value`: one node, or (nested) lists, tuples and sets of nodes.

    Anything else raises TypeError (also an AirflowException, as Airflow 2 raised)."""
    if isinstance(value, DependencyMixin):
        yield value
        return
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from iter_nodes(item)
        return
    from tradewind.sdk.exceptions import AirflowTypeError

    raise AirflowTypeError(
        f"Relationships can only be set between Operators; received {type(value).__name__}"
    )


class EdgeModifier(DependencyMixin):
    """A node placed between two others to attach information (a label) to the edges between them.

    It holds what was put on its left and on its right; once it has both, it draws every left-to-right
    edge and records its label on the DAG for each one.
    """

    def __init__(self, label: str | None = None) -> None:
        self.label = label
        self._upstream: list[DependencyMixin] = []
        self._downstream: list[DependencyMixin] = []

    @property
    def roots(self) -> list[Any]:
        return self._downstream

    @property
    def leaves(self) -> list[Any]:
        return self._upstream

    def set_upstream(self, other: Any, edge_modifier: EdgeModifier | None = None) -> None:
        self._attach(other, upstream=True)

    def set_downstream(self, other: Any, edge_modifier: EdgeModifier | None = None) -> None:
        self._attach(other, upstream=False)

    def update_relative(
        self, other: Any, upstream: bool = True, edge_modifier: EdgeModifier | None = None
    ) -> None:
        self._attach(other, upstream=upstream)

    def _attach(self, other: Any, *, upstream: bool) -> None:
        nodes = list(iter_nodes(other))
        (self._upstream if upstream else self._downstream).extend(nodes)
        for start in self._upstream:
            for end in self._downstream:
                start.set_downstream(end, edge_modifier=self)

    def add_edge_info(self, dag: Any, upstream_id: str, downstream_id: str) -> None:
        """Record this modifier's information for the task edge upstream_id -> downstream_id."""
        dag.set_edge_info(upstream_id, downstream_id, {"label": self.label})

    def __repr__(self) -> str:
        return f"<Label {self.label!r}>"


def Label(label: str) -> EdgeModifier:  # noqa: N802  (Airflow's public name is a function)
    """An edge modifier that labels the edges it sits on."""
    return EdgeModifier(label=label)
