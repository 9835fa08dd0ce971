"""Jinja templating of operator fields, with Airflow's rules.

`Templater` is the mixin BaseOperator inherits (and any object nested in a template field may declare
`template_fields` to be rendered too). `get_template_env(dag)` gives the Jinja environment a DAG's tasks
render with. This module never imports the operator or DAG classes.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import jinja2
import jinja2.ext
import jinja2.lexer
import jinja2.nativetypes
import jinja2.sandbox

log = logging.getLogger(__name__)


def _none_kept(format_date: Callable[[Any], str]) -> Callable[[Any], str | None]:
    """The filter formatting a date with `format_date`; None passes through, as in Airflow (the previous
    successful run's dates are None on a first run)."""
    return lambda value: None if value is None else format_date(value)


FILTERS: dict[str, Callable[[Any], str | None]] = {
    "ds": _none_kept(lambda value: value.strftime("%Y-%m-%d")),
    "ds_nodash": _none_kept(lambda value: value.strftime("%Y%m%d")),
    "ts": _none_kept(lambda value: value.isoformat()),
    "ts_nodash": _none_kept(lambda value: value.strftime("%Y%m%dT%H%M%S")),
    "ts_nodash_with_tz": _none_kept(lambda value: value.isoformat().replace("-", "").replace(":", "")),
}


class _AirflowEnvironmentMixin:
    """Airflow's filters, and Airflow's relaxed sandbox: single-underscore attributes are allowed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters.update(FILTERS)  # type: ignore[attr-defined]

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return not attr.startswith("__")


class SandboxedEnvironment(_AirflowEnvironmentMixin, jinja2.sandbox.SandboxedEnvironment):
    """The environment string templates render in (Airflow's default)."""


class NativeEnvironment(_AirflowEnvironmentMixin, jinja2.nativetypes.NativeEnvironment):
    """The environment for `render_template_as_native_obj=True`: templates render to Python objects."""


class LiteralValue:
    """A value a template field must not render (Airflow's `literal()`); unwrapped when rendered."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"LiteralValue({self.value!r})"


def literal(value: Any) -> LiteralValue:
    """Mark `value` so template rendering passes it through unchanged."""
    return LiteralValue(value)


def _dag_folder(dag: Any) -> str | None:
    fileloc = getattr(dag, "fileloc", None)
    if not fileloc:
        return None
    return os.path.dirname(os.path.abspath(fileloc))


# Environments built, per DAG, for the inputs they were built from. A task child would otherwise build one
# twice per task (resolving template files, then rendering): its filters, tests and sandbox tables are about
# a twentieth of a BashOperator child's start. A template process builds its DAGs' environments before it
# forks (warm_template_envs), so every child finds them ready; each task runs in a process of its own, so
# whatever a task does to its environment stays with that task.
_ENVIRONMENTS: weakref.WeakKeyDictionary[Any, tuple[tuple, jinja2.Environment]] = weakref.WeakKeyDictionary()


def get_template_env(dag: Any = None) -> jinja2.Environment:
    """The Jinja environment for a DAG's templates, as Airflow's `DAG.get_template_env` builds it.

    Searches the DAG file's folder then `template_searchpath`; StrictUndefined (or the DAG's
    `template_undefined`); the `do` extension; `user_defined_macros` as globals, Airflow's filters plus
    `user_defined_filters`; `jinja_environment_kwargs` on top; a native environment when the DAG has
    `render_template_as_native_obj`. With no DAG: the default sandboxed environment on the working folder.
    The same DAG with the same settings gets the same environment back.
    """
    searchpath: list[str] = []
    folder = _dag_folder(dag) if dag is not None else None
    if folder:
        searchpath.append(folder)
    # With no DAG (None), each getattr below gives its default.
    extra_paths = getattr(dag, "template_searchpath", None)
    if isinstance(extra_paths, str):
        searchpath.append(extra_paths)
    elif extra_paths:
        searchpath.extend(extra_paths)
    if not searchpath:
        searchpath.append(os.getcwd())
    undefined = getattr(dag, "template_undefined", None) or jinja2.StrictUndefined
    user_kwargs = getattr(dag, "jinja_environment_kwargs", None)
    native = bool(getattr(dag, "render_template_as_native_obj", False))
    macros = getattr(dag, "user_defined_macros", None)
    filters = getattr(dag, "user_defined_filters", None)
    # Identities, not values: a setting replaced or a macro added after the environment was built is seen.
    inputs = (tuple(searchpath), undefined, native, *(_identities(m) for m in (user_kwargs, macros, filters)))
    try:
        cached = _ENVIRONMENTS.get(dag) if dag is not None else None
    except TypeError:  # an object that cannot be weakly referenced: build every time
        cached = None
    if cached is not None and cached[0] == inputs:
        return cached[1]
    options: dict[str, Any] = {
        "loader": jinja2.FileSystemLoader(searchpath),
        "undefined": undefined,
        "extensions": ["jinja2.ext.do"],
        "cache_size": 0,
    }
    if user_kwargs:
        options.update(user_kwargs)
    env: jinja2.Environment = (NativeEnvironment if native else SandboxedEnvironment)(**options)
    if macros:
        env.globals.update(macros)
    if filters:
        env.filters.update(filters)
    if dag is not None:
        try:
            _ENVIRONMENTS[dag] = (inputs, env)
        except TypeError:
            pass
    return env


def _identities(mapping: Any) -> tuple | None:
    return tuple((key, id(value)) for key, value in mapping.items()) if mapping else None


def warm_template_envs(dags: Iterable[Any]) -> None:
    """Build these DAGs' environments now (a template process, before it forks its task children)."""
    for dag in dags:
        try:
            get_template_env(dag)
        except Exception:  # a bad jinja_environment_kwargs: the task that renders reports it
            log.debug("no template environment for %r", getattr(dag, "dag_id", dag), exc_info=True)


def _as_plain_text(env: jinja2.Environment, text: str) -> str | None:
    """What `text` renders to when it holds no Jinja syntax for `env` (most commands and SQL without a
    macro), without compiling it: a task child compiles each template afresh, a few milliseconds of its
    start. That is the text with its line ends made `newline_sequence` and one trailing line end dropped
    (unless `keep_trailing_newline`), as Jinja gives it. None when Jinja has to render it: a delimiter in
    the text, line statements or comments configured, an extension that rewrites sources, or a native
    environment (which would turn "1" into a number)."""
    if (
        isinstance(env, jinja2.nativetypes.NativeEnvironment)
        or env.line_statement_prefix is not None
        or env.line_comment_prefix is not None
        or any(type(ext).preprocess is not jinja2.ext.Extension.preprocess for ext in env.extensions.values())
        or env.block_start_string in text
        or env.variable_start_string in text
        or env.comment_start_string in text
    ):
        return None
    lines = jinja2.lexer.newline_re.split(text)[::2]
    if not env.keep_trailing_newline and lines[-1] == "":
        del lines[-1]
    return env.newline_sequence.join(lines)


def _render(template: jinja2.Template, context: Any) -> Any:
    """Render one compiled template with a context mapping (native environments return Python objects)."""
    return template.render(dict(context) if not isinstance(context, dict) else context)


class Templater:
    """Mixin: renders the attributes named in `template_fields` with Jinja, recursively, as Airflow does.

    Strings are templates (or, when they end with one of `template_ext`, names of template files found on
    the environment's search path); lists, tuples (named tuples too), sets and dict values are rendered
    item by item; XComArg-like objects (anything with `resolve(context)`) are resolved; any other object
    that itself declares `template_fields` has those rendered in place.
    """

    template_fields: Collection[str] = ()
    template_ext: Sequence[str] = ()
    template_fields_renderers: dict[str, str] = {}

    def get_template_env(self, dag: Any = None) -> jinja2.Environment:
        """The environment of `dag` (default: this object's own DAG, when it has one)."""
        if dag is None:
            try:
                dag = getattr(self, "dag", None)
            except Exception:  # an unassigned operator's `dag` property may raise
                dag = None
        return get_template_env(dag)

    def prepare_template(self) -> None:
        """Hook run after template files are resolved and before rendering; subclasses may alter fields."""

    def resolve_template_files(self) -> None:
        """Replace each template field that names a template file (by `template_ext`) with the file's
        text; a missing file is logged and left to fail at render time."""
        if not self.template_ext:
            self.prepare_template()
            return
        env = self.get_template_env()
        for field in self.template_fields:
            content = getattr(self, field, None)
            if isinstance(content, str) and content.endswith(tuple(self.template_ext)):
                try:
                    setattr(self, field, env.loader.get_source(env, content)[0])  # type: ignore[union-attr]
                except Exception:
                    log.exception("Failed to resolve template file %r for field %s", content, field)
            elif isinstance(content, list):
                resolved = []
                for item in content:
                    if isinstance(item, str) and item.endswith(tuple(self.template_ext)):
                        try:
                            item = env.loader.get_source(env, item)[0]  # type: ignore[union-attr]
                        except Exception:
                            log.exception("Failed to resolve template file %r for field %s", item, field)
                    resolved.append(item)
                setattr(self, field, resolved)
        self.prepare_template()

    def has_templates(self) -> bool:
        """Whether rendering could change a template field. False only when this object renders the default
        way and no field holds what rendering changes (a string, a literal, a callable, an XComArg, or an
        object with template fields of its own), as with most PythonOperators: the runner then builds no Jinja
        environment, which costs a task child a tenth of its start."""
        renderers = ("render_template_fields", "_do_render_template_fields", "render_template")
        if any(getattr(type(self), name) is not getattr(Templater, name) for name in renderers):
            return True
        missing = object()
        for field in self.template_fields:
            value = getattr(self, field, missing)
            if value is missing or (value and (callable(value) or _may_render(value))):
                return True
        return False

    def render_template_fields(self, context: Any, jinja_env: jinja2.Environment | None = None) -> None:
        """Render every attribute named in `template_fields` in place."""
        if jinja_env is None:
            jinja_env = self.get_template_env()
        self._do_render_template_fields(self, self.template_fields, context, jinja_env, set())

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Any,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        for field in template_fields:
            try:
                value = getattr(parent, field)
            except AttributeError:
                raise AttributeError(
                    f"{field!r} is configured as a template field but {type(parent).__name__} does not "
                    "have this attribute."
                ) from None
            if not value:
                continue
            try:
                if callable(value) and not hasattr(value, "resolve") and not isinstance(value, type):
                    rendered = value(context=context, jinja_env=jinja_env)
                else:
                    rendered = self.render_template(value, context, jinja_env, seen_oids)
            except Exception:
                log.error(
                    "Exception rendering Jinja template for task '%s', field '%s'. Template: %r",
                    getattr(self, "task_id", type(self).__name__),
                    field,
                    value,
                )
                raise
            setattr(parent, field, rendered)

    def render_template(
        self,
        content: Any,
        context: Any,
        jinja_env: jinja2.Environment | None = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        """Render `content` (any template-field value) against `context` and return the result."""
        if seen_oids is None:
            seen_oids = set()
        if id(content) in seen_oids:
            return content
        if jinja_env is None:
            jinja_env = self.get_template_env()
        if isinstance(content, str):
            if self.template_ext and content.endswith(tuple(self.template_ext)):
                template = jinja_env.get_template(content)
            elif (plain := _as_plain_text(jinja_env, content)) is not None:
                return plain
            else:
                template = jinja_env.from_string(content)
            return _render(template, context)
        if isinstance(content, LiteralValue):
            return content.value
        if hasattr(content, "resolve") and _is_resolvable(content):
            return content.resolve(context)
        if isinstance(content, tuple):
            items = [self.render_template(item, context, jinja_env, seen_oids) for item in content]
            if hasattr(content, "_fields"):  # a named tuple takes its fields positionally
                return type(content)(*items)
            return tuple(items)
        if isinstance(content, list):
            return [self.render_template(item, context, jinja_env, seen_oids) for item in content]
        if isinstance(content, dict):
            return {
                key: self.render_template(item, context, jinja_env, seen_oids)
                for key, item in content.items()
            }
        if isinstance(content, set):
            return {self.render_template(item, context, jinja_env, seen_oids) for item in content}
        self._render_nested_template_fields(content, context, jinja_env, seen_oids)
        return content

    def _render_nested_template_fields(
        self, value: Any, context: Any, jinja_env: jinja2.Environment, seen_oids: set[int]
    ) -> None:
        nested_fields = getattr(type(value), "template_fields", None)
        if not nested_fields or isinstance(value, type):
            return
        seen_oids.add(id(value))
        self._do_render_template_fields(value, nested_fields, context, jinja_env, seen_oids)


def _may_render(content: Any) -> bool:
    """Whether Templater.render_template could give back something other than `content` itself."""
    if isinstance(content, str | LiteralValue) or _is_resolvable(content):
        return True
    if isinstance(content, tuple | list | set):
        return any(_may_render(item) for item in content)
    if isinstance(content, dict):
        return any(_may_render(item) for item in content.values())
    return bool(getattr(type(content), "template_fields", None)) and not isinstance(content, type)


def _is_resolvable(content: Any) -> bool:
    """XComArgs (S1's xcom_arg module) and anything else that declares itself resolvable."""
    if getattr(content, "__tradewind_resolvable__", False):
        return True
    try:
        from tradewind.sdk.xcom_arg import XComArg
    except ImportError:
        return False
    return isinstance(content, XComArg)
