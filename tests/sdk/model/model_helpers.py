"""Small operator classes for the graph-model tests."""

from __future__ import annotations

from typing import Any

from tradewind.sdk.baseoperator import BaseOperator


class Op(BaseOperator):
    """An operator with one templated field and one plain argument."""

    template_fields = ("command",)

    def __init__(self, *, command: str = "noop", flavour: str = "plain", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.command = command
        self.flavour = flavour

    def execute(self, context: Any) -> Any:
        return self.command


class SubOp(Op):
    """A second level of the class hierarchy, with a required argument."""

    def __init__(self, *, level: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.level = level
