"""TaskFlow decorators: @task (and .python/.bash/.branch/.short_circuit/.sensor/...), @setup, @teardown.

Calling a decorated function inside a DAG creates an operator whose callable is the function and returns
its XComArg; XComArgs passed as arguments become upstream dependencies and are resolved when the task
runs. `.override(...)` changes operator arguments, `.partial(...)`/`.expand(...)` map the task.
"""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from tradewind.sdk.baseoperator import BaseOperator
from tradewind.sdk.context import KNOWN_CONTEXT_KEYS
from tradewind.sdk.exceptions import AirflowSkipException
from tradewind.sdk.execution import determine_kwargs
from tradewind.sdk.operators.bash import BashOperator
from tradewind.sdk.operators.python import (
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
    context_merge,
    run_python_callable,
)
from tradewind.sdk.sensors.base import BaseSensorOperator, PokeReturnValue
from tradewind.sdk.xcom_arg import XComArg

__all__ = ["DecoratedOperator", "setup", "task", "task_decorator_factory", "teardown"]


def get_unique_task_id(task_id: str, dag: Any = None, task_group: Any = None) -> str:
    """`task_id`, or `task_id__N` with the next free N when the DAG (in that task group) already has it,
    as Airflow names repeated calls of one decorated function."""
    from tradewind.sdk.dag import DagContext
    from tradewind.sdk.taskgroup import TaskGroupContext

    dag = dag or DagContext.get_current()
    if dag is None:
        return task_id
    task_group = task_group or TaskGroupContext.get_current(dag)

    def full_id(label: str) -> str:
        return task_group.child_id(label) if task_group is not None else label

    existing = set(getattr(dag, "task_ids", None) or getattr(dag, "task_dict", {}))
    if full_id(task_id) not in existing:
        return task_id
    core = re.split(r"__\d+$", task_id)[0]
    pattern = re.compile(rf"^{re.escape(full_id(core))}__(\d+)$")
    numbers = [int(match.group(1)) for other in existing if (match := pattern.match(other))]
    return f"{core}__{max(numbers, default=0) + 1}"


def infer_multiple_outputs(function: Callable) -> bool:
    """True when the function's return annotation is a mapping type (`-> dict`, `-> dict[str, int]`,
    a TypedDict), as Airflow infers `multiple_outputs`."""
    if "return" not in getattr(function, "__annotations__", {}):
        return False
    try:
        return_type = typing.get_type_hints(function).get("return", Any)
    except Exception:
        return False
    origin = typing.get_origin(return_type) or return_type
    return isinstance(origin, type) and issubclass(origin, Mapping)


def _check_signature(
    python_callable: Callable, op_args: Sequence[Any], op_kwargs: Mapping[str, Any], *, partial: bool = False
) -> None:
    """Fail at DAG parse time, like Airflow, when the call cannot bind to the function (context-key
    parameters count as given: the context fills them). `partial`: the mapped arguments of an expand() are
    only known at run time, so only the given ones are checked."""
    signature = inspect.signature(python_callable)
    faulty = [
        param.name
        for param in signature.parameters.values()
        if param.name in KNOWN_CONTEXT_KEYS and param.default not in (None, inspect.Parameter.empty)
    ]
    if faulty:
        raise ValueError(f"Context key parameter {faulty[0]} can't have a default other than None")
    parameters = [
        param.replace(default=None) if param.name in KNOWN_CONTEXT_KEYS else param
        for param in signature.parameters.values()
    ]
    try:
        signature = signature.replace(parameters=parameters)
    except ValueError as error:
        raise ValueError(
            f"The function signature of {python_callable.__name__} broke while assigning defaults to context "
            f"key parameters: {error}"
        ) from error
    if partial:
        signature.bind_partial(*op_args, **op_kwargs)
    else:
        signature.bind(*op_args, **op_kwargs)


class DecoratedOperator(BaseOperator):
    """Base of the operators TaskFlow decorators create: holds the function and its call arguments, checks
    them against the function's signature, and names the task uniquely in its DAG."""

    template_fields: Collection[str] = ("op_args", "op_kwargs")
    custom_operator_name = "@task"

    def __init__(
        self,
        *,
        python_callable: Callable,
        task_id: str,
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        kwargs_to_upstream: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.__dict__.get("_from_mapped"):  # an unmapped instance keeps its mapped task's id
            task_id = get_unique_task_id(task_id, kwargs.get("dag"), kwargs.get("task_group"))
        op_args = list(op_args or [])
        op_kwargs = dict(op_kwargs or {})
        _check_signature(python_callable, op_args, op_kwargs)
        upstream = self._upstream_kwargs(python_callable, op_args, op_kwargs)
        super().__init__(task_id=task_id, **upstream, **(kwargs_to_upstream or {}), **kwargs)
        self.python_callable = python_callable
        self.op_args = op_args
        self.op_kwargs = op_kwargs

    def _upstream_kwargs(
        self, python_callable: Callable, op_args: list[Any], op_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """The arguments the concrete operator class's __init__ needs from the call."""
        return {"python_callable": python_callable, "op_args": op_args, "op_kwargs": op_kwargs}

    def call_function(self, context: Any) -> Any:
        """Call the decorated function with its arguments and the context keys it asks for."""
        context_merge(context, self.op_kwargs)
        kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        return run_python_callable(self.python_callable, list(self.op_args), kwargs)


class _PythonDecoratedOperator(DecoratedOperator, PythonOperator):
    """@task / @task.python."""

    template_fields: Collection[str] = ("templates_dict", "op_args", "op_kwargs")
    custom_operator_name = "@task"


class _BranchPythonDecoratedOperator(DecoratedOperator, BranchPythonOperator):
    """@task.branch: the function returns the task id(s) to follow."""

    template_fields: Collection[str] = ("templates_dict", "op_args", "op_kwargs")
    custom_operator_name = "@task.branch"


class _ShortCircuitDecoratedOperator(DecoratedOperator, ShortCircuitOperator):
    """@task.short_circuit: a falsy return value skips downstream tasks."""

    template_fields: Collection[str] = ("templates_dict", "op_args", "op_kwargs")
    custom_operator_name = "@task.short_circuit"


class _BashDecoratedOperator(DecoratedOperator, BashOperator):
    """@task.bash: the function returns the bash command (rendered as a template) to run."""

    template_fields: Collection[str] = ("op_args", "op_kwargs", "bash_command", "env", "cwd")
    custom_operator_name = "@task.bash"

    def _upstream_kwargs(
        self, python_callable: Callable, op_args: list[Any], op_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        return {"bash_command": ""}

    def execute(self, context: Any) -> Any:
        """Call the function for the command, render it, then run it like BashOperator."""
        command = self.call_function(context)
        if not isinstance(command, str) or not command.strip():
            raise TypeError("The returned value from the TaskFlow callable must be a non-empty string.")
        self.bash_command = self.render_template(command, context)
        return super().execute(context)


class _DecoratedSensorOperator(DecoratedOperator, BaseSensorOperator):
    """@task.sensor: the function is the poke; it returns a bool or a PokeReturnValue."""

    custom_operator_name = "@task.sensor"

    def _upstream_kwargs(
        self, python_callable: Callable, op_args: list[Any], op_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        return {}

    def poke(self, context: Any) -> PokeReturnValue | bool:
        """Call the function once."""
        return self.call_function(context)


class _TaskDecorator:
    """A decorated function: call it to add a task; `.override()`, `.partial()`, `.expand()`,
    `.expand_kwargs()` as in Airflow."""

    def __init__(
        self,
        function: Callable,
        operator_class: type[DecoratedOperator],
        multiple_outputs: bool | None,
        kwargs: dict[str, Any],
        *,
        is_setup: bool = False,
        is_teardown: bool = False,
        on_failure_fail_dagrun: bool = False,
    ) -> None:
        if not callable(function):
            raise TypeError("The decorated object must be callable")
        self.function = function
        self.operator_class = operator_class
        self.multiple_outputs = (
            infer_multiple_outputs(function) if multiple_outputs is None else multiple_outputs
        )
        self.kwargs = kwargs
        self.is_setup = is_setup
        self.is_teardown = is_teardown
        self.on_failure_fail_dagrun = on_failure_fail_dagrun
        functools.update_wrapper(self, function)

    @property
    def task_id(self) -> str:
        """The task id calls of this function get (before de-duplication)."""
        return self.kwargs.get("task_id") or self.function.__name__

    def _operator_kwargs(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        kwargs = {**self.kwargs, **(extra or {})}
        kwargs["task_id"] = kwargs.get("task_id") or self.function.__name__
        kwargs.setdefault("multiple_outputs", self.multiple_outputs)
        return kwargs

    def _mark(self, operator: Any) -> None:
        if self.function.__doc__ and not getattr(operator, "doc_md", None):
            operator.doc_md = self.function.__doc__
        if self.is_setup:
            operator.as_setup()
        if self.is_teardown:
            operator.as_teardown(on_failure_fail_dagrun=self.on_failure_fail_dagrun)

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        operator = self.operator_class(
            python_callable=self.function, op_args=args, op_kwargs=kwargs, **self._operator_kwargs()
        )
        self._mark(operator)
        return XComArg(operator)

    def override(self, **kwargs: Any) -> _TaskDecorator:
        """A copy with operator arguments changed (`task_id`, `retries`, `multiple_outputs`, ...)."""
        multiple_outputs = kwargs.pop("multiple_outputs", self.multiple_outputs)
        return _TaskDecorator(
            self.function,
            self.operator_class,
            multiple_outputs,
            {**self.kwargs, **kwargs},
            is_setup=self.is_setup,
            is_teardown=self.is_teardown,
            on_failure_fail_dagrun=self.on_failure_fail_dagrun,
        )

    def partial(self, **kwargs: Any) -> _TaskDecoratorPartial:
        """Fix some of the function's arguments of a mapped task; `.expand(...)` gives the mapped ones."""
        return _TaskDecoratorPartial(self, kwargs)

    def expand(self, **mapped_kwargs: Any) -> XComArg:
        """Map the task over the given arguments (lists, dicts or XComArgs)."""
        return self.partial().expand(**mapped_kwargs)

    def expand_kwargs(self, kwargs: Any, *, strict: bool = True) -> XComArg:
        """Map the task over a list of argument dicts (or an XComArg giving one)."""
        return self.partial().expand_kwargs(kwargs, strict=strict)

    def __repr__(self) -> str:
        return f"<task decorator {self.operator_class.custom_operator_name} {self.function.__qualname__}>"


class _TaskDecoratorPartial:
    """`decorated.partial(**fixed)`: the function's fixed arguments of a mapped task."""

    def __init__(self, decorator: _TaskDecorator, fixed: dict[str, Any]) -> None:
        self.decorator = decorator
        self.fixed = fixed

    def expand(self, **mapped_kwargs: Any) -> XComArg:
        """Map over `mapped_kwargs` (each a list, dict or XComArg); the product of them is mapped."""
        from tradewind.sdk.mappedoperator import DictOfListsExpandInput, is_mappable_value

        if not mapped_kwargs:
            raise TypeError("no arguments to expand against")
        for name, value in mapped_kwargs.items():
            if not is_mappable_value(value):
                raise ValueError(
                    f"expand() got an unexpected type {type(value).__name__!r} for keyword argument {name!r}"
                )
        duplicated = sorted(set(self.fixed) & set(mapped_kwargs))
        if duplicated:
            raise TypeError(f"expand() got arguments already given to partial(): {', '.join(duplicated)}")
        _check_signature(self.decorator.function, [], {**self.fixed, **mapped_kwargs}, partial=True)
        return self._build(DictOfListsExpandInput(dict(mapped_kwargs)))

    def expand_kwargs(self, kwargs: Any, *, strict: bool = True) -> XComArg:
        """Map over a list of argument dicts (or an XComArg resolving to one)."""
        from tradewind.sdk.mappedoperator import ListOfDictsExpandInput

        _check_signature(self.decorator.function, [], self.fixed, partial=True)
        return self._build(ListOfDictsExpandInput.checked(kwargs))

    def _build(self, expand_input: Any) -> XComArg:
        from tradewind.sdk.mappedoperator import OperatorPartial

        kwargs = self.decorator._operator_kwargs()
        kwargs["task_id"] = get_unique_task_id(kwargs["task_id"], kwargs.get("dag"), kwargs.get("task_group"))
        partial = OperatorPartial.create(
            self.decorator.operator_class,
            {
                "python_callable": self.decorator.function,
                "op_args": [],
                "op_kwargs": dict(self.fixed),
                **kwargs,
            },
        )
        # The mapped values are the function's arguments: they go into op_kwargs, not the operator's init.
        operator = partial._expand(expand_input, mapped_kwargs_field="op_kwargs")
        self.decorator._mark(operator)
        return XComArg(operator)


def task_decorator_factory(
    python_callable: Callable | None = None,
    *,
    multiple_outputs: bool | None = None,
    decorated_operator_class: type[DecoratedOperator],
    is_setup: bool = False,
    is_teardown: bool = False,
    on_failure_fail_dagrun: bool = False,
    **kwargs: Any,
) -> Any:
    """Make a decorator (or, given the function, the decorated function) creating
    `decorated_operator_class` tasks; what every @task.* is built from (also for custom decorators)."""

    def decorate(function: Callable) -> _TaskDecorator:
        return _TaskDecorator(
            function,
            decorated_operator_class,
            multiple_outputs,
            dict(kwargs),
            is_setup=is_setup,
            is_teardown=is_teardown,
            on_failure_fail_dagrun=on_failure_fail_dagrun,
        )

    if python_callable is None:
        return decorate
    if callable(python_callable):
        return decorate(python_callable)
    raise TypeError("No args allowed while using @task, use kwargs instead")


def _python_task(
    python_callable: Callable | None = None, multiple_outputs: bool | None = None, **kwargs: Any
) -> Any:
    return task_decorator_factory(
        python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=_PythonDecoratedOperator,
        **kwargs,
    )


# The options of Airflow's virtualenv and external-python decorators. They have no meaning here: the function
# runs in the task's own interpreter.
_OUT_OF_PROCESS_OPTIONS = (
    "requirements",
    "python_version",
    "serializer",
    "system_site_packages",
    "pip_install_options",
    "use_dill",
    "index_urls",
    "venv_cache_path",
    "expect_airflow",
    "python",
    "expect_pendulum",
    "string_args",
    "use_airflow_context",
    "inherit_env",
)


def _in_process(kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` without the virtualenv and external-python options."""
    return {name: value for name, value in kwargs.items() if name not in _OUT_OF_PROCESS_OPTIONS}


class TaskDecoratorCollection:
    """The `task` object: `@task` itself plus `@task.python`, `.bash`, `.branch`, `.short_circuit`,
    `.sensor`, and `.virtualenv` / `.external_python` (run in-process)."""

    def __call__(
        self, python_callable: Callable | None = None, multiple_outputs: bool | None = None, **kwargs: Any
    ) -> Any:
        return _python_task(python_callable, multiple_outputs=multiple_outputs, **kwargs)

    def python(
        self, python_callable: Callable | None = None, multiple_outputs: bool | None = None, **kwargs: Any
    ) -> Any:
        """@task.python: the same as @task."""
        return _python_task(python_callable, multiple_outputs=multiple_outputs, **kwargs)

    def bash(self, python_callable: Callable | None = None, **kwargs: Any) -> Any:
        """@task.bash: the function returns a bash command."""
        kwargs.pop("multiple_outputs", None)
        return task_decorator_factory(
            python_callable, multiple_outputs=False, decorated_operator_class=_BashDecoratedOperator, **kwargs
        )

    def branch(
        self, python_callable: Callable | None = None, multiple_outputs: bool | None = None, **kwargs: Any
    ) -> Any:
        """@task.branch: the function returns the task id(s) to follow."""
        return task_decorator_factory(
            python_callable,
            multiple_outputs=multiple_outputs,
            decorated_operator_class=_BranchPythonDecoratedOperator,
            **kwargs,
        )

    def short_circuit(
        self, python_callable: Callable | None = None, multiple_outputs: bool | None = None, **kwargs: Any
    ) -> Any:
        """@task.short_circuit: a falsy return value skips downstream tasks."""
        return task_decorator_factory(
            python_callable,
            multiple_outputs=multiple_outputs,
            decorated_operator_class=_ShortCircuitDecoratedOperator,
            **kwargs,
        )

    def sensor(self, python_callable: Callable | None = None, **kwargs: Any) -> Any:
        """@task.sensor: the function is a poke returning a bool or PokeReturnValue."""
        kwargs.pop("multiple_outputs", None)
        return task_decorator_factory(
            python_callable,
            multiple_outputs=False,
            decorated_operator_class=_DecoratedSensorOperator,
            **kwargs,
        )

    def virtualenv(
        self, python_callable: Callable | None = None, multiple_outputs: bool | None = None, **kwargs: Any
    ) -> Any:
        """@task.virtualenv: runs in the task's own interpreter (requirements are not installed)."""
        return _python_task(python_callable, multiple_outputs=multiple_outputs, **_in_process(kwargs))

    def external_python(
        self, python_callable: Callable | None = None, multiple_outputs: bool | None = None, **kwargs: Any
    ) -> Any:
        """@task.external_python: runs in the task's own interpreter."""
        return _python_task(python_callable, multiple_outputs=multiple_outputs, **_in_process(kwargs))

    def branch_virtualenv(
        self, python_callable: Callable | None = None, multiple_outputs: bool | None = None, **kwargs: Any
    ) -> Any:
        """@task.branch_virtualenv: @task.branch, run in-process."""
        return self.branch(python_callable, multiple_outputs=multiple_outputs, **_in_process(kwargs))

    def branch_external_python(
        self, python_callable: Callable | None = None, multiple_outputs: bool | None = None, **kwargs: Any
    ) -> Any:
        """@task.branch_external_python: @task.branch, run in-process."""
        return self.branch(python_callable, multiple_outputs=multiple_outputs, **_in_process(kwargs))

    def run_if(self, condition: Callable[[Any], Any], skip_message: str | None = None) -> Callable:
        """@task.run_if(condition), above a task decorator: the task is skipped unless `condition(context)`
        is true when it is about to run (Airflow 2.10)."""
        return _skip_unless(condition, skip_message, run_when=True)

    def skip_if(self, condition: Callable[[Any], Any], skip_message: str | None = None) -> Callable:
        """@task.skip_if(condition), above a task decorator: the task is skipped when `condition(context)`
        is true when it is about to run (Airflow 2.10)."""
        return _skip_unless(condition, skip_message, run_when=False)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"@task.{name} is not available on Tradewind (it needs a provider package that is not installed)"
        )


def _skip_unless(condition: Callable[[Any], Any], skip_message: str | None, *, run_when: bool) -> Callable:
    """The decorator of @task.run_if / @task.skip_if: the task's pre_execute checks the condition first."""

    def decorate(decorated: _TaskDecorator) -> _TaskDecorator:
        if not isinstance(decorated, _TaskDecorator):
            raise TypeError("@task.run_if and @task.skip_if go above a task decorator such as @task")
        earlier = decorated.kwargs.get("pre_execute")

        def pre_execute(context: Any) -> None:
            if bool(condition(context)) != run_when:
                raise AirflowSkipException(skip_message or "Task was skipped due to condition.")
            if earlier is not None:
                earlier(context)

        decorated.kwargs["pre_execute"] = pre_execute
        return decorated

    return decorate


task = TaskDecoratorCollection()


def setup(python_callable: Callable | None = None, **kwargs: Any) -> Any:
    """@setup: a @task that is a setup task (its teardowns run even when work fails)."""
    return task_decorator_factory(
        python_callable, decorated_operator_class=_PythonDecoratedOperator, is_setup=True, **kwargs
    )


def teardown(
    python_callable: Callable | None = None, *, on_failure_fail_dagrun: bool = False, **kwargs: Any
) -> Any:
    """@teardown: a @task that is a teardown task (runs when its setups ran, whatever the work did)."""
    return task_decorator_factory(
        python_callable,
        decorated_operator_class=_PythonDecoratedOperator,
        is_teardown=True,
        on_failure_fail_dagrun=on_failure_fail_dagrun,
        **kwargs,
    )
