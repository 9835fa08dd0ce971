"""PythonSensor: poke by calling a Python callable."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from tradewind.sdk.execution import determine_kwargs
from tradewind.sdk.operators.python import context_merge
from tradewind.sdk.sensors.base import BaseSensorOperator, PokeReturnValue


class PythonSensor(BaseSensorOperator):
    """Done when `python_callable(*op_args, **op_kwargs)` returns a truthy value (or a done
    PokeReturnValue); context keys the callable names are passed to it, as for PythonOperator."""

    template_fields: Collection[str] = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable,
        op_args: list | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.op_args = op_args or []
        self.op_kwargs = op_kwargs or {}
        self.templates_dict = templates_dict

    def poke(self, context: Any) -> PokeReturnValue | bool:
        """Call the callable once."""
        context_merge(context, self.op_kwargs, templates_dict=self.templates_dict)
        kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        result = self.python_callable(*self.op_args, **kwargs)
        if isinstance(result, PokeReturnValue):
            return result
        return PokeReturnValue(bool(result))
