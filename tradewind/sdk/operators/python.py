"""Python operators: PythonOperator, BranchPythonOperator, ShortCircuitOperator (and in-process stand-ins
for the virtualenv / external-python operators)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from tradewind.sdk.baseoperator import BaseOperator
from tradewind.sdk.context import get_current_context
from tradewind.sdk.exceptions import AirflowTypeError, RemovedInAirflow3Warning
from tradewind.sdk.execution import determine_kwargs
from tradewind.sdk.operators.branch import BranchMixIn, SkipMixin, downstream_closure

__all__ = [
    "BranchExternalPythonOperator",
    "BranchPythonOperator",
    "BranchPythonVirtualenvOperator",
    "ExternalPythonOperator",
    "PythonOperator",
    "PythonVirtualenvOperator",
    "ShortCircuitOperator",
    "get_current_context",
    "run_python_callable",
]

log = logging.getLogger(__name__)


def context_merge(context: dict[str, Any], *args: Mapping[str, Any] | None, **kwargs: Any) -> None:
    """Merge mappings and keyword values into the context in place (Airflow's `context_merge`)."""
    for mapping in args:
        if mapping:
            context.update(mapping)
    context.update(kwargs)


def _record_metadata(item: Any) -> bool:
    """A `Metadata(asset, extra, alias=None)` yielded by a task: its extra goes to the asset's event."""
    if not hasattr(item, "extra") or not (hasattr(item, "asset") or hasattr(item, "uri")):
        return False
    context = get_current_context()
    asset = getattr(item, "asset", None) or item
    alias = getattr(item, "alias", None)
    if alias is not None:
        context["outlet_events"][alias].add(asset, extra=item.extra)
    else:
        context["outlet_events"][asset].extra.update(item.extra or {})
    return True


def run_python_callable(function: Callable, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
    """Call `function`; a generator function is run to its end, its yielded asset Metadata recorded as
    outlet events, and its `return` value is the result (Airflow's execution-callable runner). An async
    function (Airflow 3.2) runs to its end in an event loop of its own, an async generator as a generator."""
    if inspect.isasyncgenfunction(function):
        return asyncio.run(_drain_async(function, function(*args, **kwargs)))
    if not inspect.isgeneratorfunction(function):
        result = function(*args, **kwargs)
        return asyncio.run(result) if inspect.iscoroutine(result) else result
    generator = function(*args, **kwargs)
    while True:
        try:
            item = next(generator)
        except StopIteration as stop:
            return stop.value
        _record_yielded(function, item)


async def _drain_async(function: Callable, generator: Any) -> None:
    async for item in generator:
        _record_yielded(function, item)


def _record_yielded(function: Callable, item: Any) -> None:
    if not _record_metadata(item):
        log.warning("Ignoring value yielded by %s: %r", getattr(function, "__name__", function), item)


class PythonOperator(BaseOperator):
    """Calls `python_callable(*op_args, **op_kwargs)`, adding the context keys the callable asks for by name
    (all of them when it takes **kwargs). The return value is the task's XCom."""

    template_fields: Collection[str] = ("templates_dict", "op_args", "op_kwargs")
    template_fields_renderers = {"templates_dict": "json", "op_args": "py", "op_kwargs": "py"}
    ui_color = "#ffefeb"
    shallow_copy_attrs: Sequence[str] = ("python_callable", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable,
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        templates_exts: Sequence[str] | None = None,
        show_return_value_in_logs: bool = True,
        **kwargs: Any,
    ) -> None:
        if not callable(python_callable):
            raise AirflowTypeError("`python_callable` param must be callable")
        if kwargs.pop("provide_context", None) is not None:  # Airflow 1's, ignored with a warning since 2.0
            warnings.warn(
                "provide_context is deprecated as of 2.0 and is no longer required",
                RemovedInAirflow3Warning,
                stacklevel=2,
            )
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.op_args = op_args or ()
        self.op_kwargs = op_kwargs or {}
        self.templates_dict = templates_dict
        if templates_exts:
            self.template_ext = templates_exts
        self.show_return_value_in_logs = show_return_value_in_logs

    def execute(self, context: Any) -> Any:
        """Merge op_kwargs and templates_dict into the context, call the callable, return its result."""
        context_merge(context, self.op_kwargs, templates_dict=self.templates_dict)
        self.op_kwargs = self.determine_kwargs(context)
        return_value = self.execute_callable()
        if self.show_return_value_in_logs:
            log.info("Done. Returned value was: %s", return_value)
        else:
            log.info("Done. Returned value not shown")
        return return_value

    def determine_kwargs(self, context: Mapping[str, Any]) -> Mapping[str, Any]:
        """The keyword arguments the callable accepts, taken from the merged context."""
        return determine_kwargs(self.python_callable, self.op_args, context)

    def execute_callable(self) -> Any:
        """Call the python callable with op_args and the determined op_kwargs."""
        return run_python_callable(self.python_callable, list(self.op_args), self.op_kwargs)


class BranchPythonOperator(PythonOperator, BranchMixIn):
    """A PythonOperator whose callable returns the task id(s) to follow; other direct downstream tasks are
    skipped."""

    inherits_from_skipmixin = True

    def execute(self, context: Any) -> Any:
        """Call the callable and follow the branch it returned."""
        return self.do_branch(context, super().execute(context))


class ShortCircuitOperator(PythonOperator, SkipMixin):
    """Continue only when the callable returns a truthy value. Otherwise every downstream task is skipped
    (`ignore_downstream_trigger_rules=True`), or only the direct downstream tasks, leaving the rest to their
    trigger rules (False)."""

    inherits_from_skipmixin = True

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    def execute(self, context: Any) -> Any:
        """Evaluate the condition; skip downstream when it is falsy. Returns the condition."""
        condition = super().execute(context)
        log.info("Condition result is %s", condition)
        if condition:
            log.info("Proceeding with downstream tasks...")
            return condition
        direct = list(getattr(self, "downstream_task_ids", ()))
        if not direct:
            log.info("No downstream tasks; nothing to do.")
            return condition
        ti = context["ti"]
        if self.ignore_downstream_trigger_rules:
            to_skip: Iterable[str] = sorted(downstream_closure(self.dag, [self.task_id]))
            ti.skip_respects_trigger_rules = False
        else:
            to_skip = sorted(direct)
            ti.skip_respects_trigger_rules = True
        log.info("Skipping downstream tasks %s", list(to_skip))
        self.skip(ti, tasks=list(to_skip))
        log.info("Done.")
        return condition


class PythonVirtualenvOperator(PythonOperator):
    """Tradewind runs the callable in the task's own interpreter: `requirements`, `python_version` and the
    other virtualenv options are accepted and ignored (packages must already be installed)."""

    def __init__(
        self,
        *,
        python_callable: Callable,
        requirements: Any = None,
        python_version: str | None = None,
        serializer: str | None = None,
        system_site_packages: bool = True,
        pip_install_options: list[str] | None = None,
        use_dill: bool = False,
        index_urls: Any = None,
        venv_cache_path: Any = None,
        expect_airflow: bool = True,
        string_args: Iterable[str] | None = None,
        use_airflow_context: bool = False,
        inherit_env: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(python_callable=python_callable, **kwargs)
        self.requirements = requirements
        self.python_version = python_version
        self.string_args = string_args or []


class ExternalPythonOperator(PythonOperator):
    """Tradewind runs the callable in the task's own interpreter; `python` is accepted and ignored."""

    def __init__(
        self,
        *,
        python: str | None = None,
        python_callable: Callable,
        serializer: str | None = None,
        use_dill: bool = False,
        expect_airflow: bool = True,
        expect_pendulum: bool = False,
        string_args: Iterable[str] | None = None,
        use_airflow_context: bool = False,
        inherit_env: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(python_callable=python_callable, **kwargs)
        self.python = python


class BranchPythonVirtualenvOperator(PythonVirtualenvOperator, BranchMixIn):
    """BranchPythonOperator semantics for a virtualenv-style callable (run in-process)."""

    inherits_from_skipmixin = True

    def execute(self, context: Any) -> Any:
        """Call the callable and follow the branch it returned."""
        return self.do_branch(context, super().execute(context))


class BranchExternalPythonOperator(ExternalPythonOperator, BranchMixIn):
    """BranchPythonOperator semantics for an external-python callable (run in-process)."""

    inherits_from_skipmixin = True

    def execute(self, context: Any) -> Any:
        """Call the callable and follow the branch it returned."""
        return self.do_branch(context, super().execute(context))
