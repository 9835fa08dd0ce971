"""Template rendering rules (Templater), environments and filters."""

from __future__ import annotations

import collections
import datetime
from types import SimpleNamespace

import jinja2
import pendulum
import pytest

from tradewind.sdk.templater import (
    NativeEnvironment,
    SandboxedEnvironment,
    Templater,
    _as_plain_text,
    get_template_env,
    literal,
    warm_template_envs,
)


class Holder(Templater):
    template_fields = ("command", "items", "mapping", "nested", "empty")
    template_ext = (".sql",)

    def __init__(self, **values):
        self.command = values.get("command")
        self.items = values.get("items")
        self.mapping = values.get("mapping")
        self.nested = values.get("nested")
        self.empty = values.get("empty", "")


class Inner:
    template_fields = ("query",)

    def __init__(self, query: str) -> None:
        self.query = query
        self.untouched = "{{ ds }}"


CONTEXT = {"ds": "2024-01-02", "n": 3, "logical_date": pendulum.datetime(2024, 1, 2, 3, 4, 5)}


def test_strings_lists_tuples_dicts_sets_and_nested_objects_render_recursively():
    Point = collections.namedtuple("Point", "x y")
    inner = Inner("select {{ n }}")
    holder = Holder(
        command="echo {{ ds }}",
        items=["{{ n }}", ("a-{{ ds }}", Point("{{ n }}", 1))],
        mapping={"{{ ds }}": "{{ n * 2 }}", "set": {"x{{ n }}"}},
        nested=inner,
    )
    holder.render_template_fields(CONTEXT, get_template_env())
    assert holder.command == "echo 2024-01-02"
    assert holder.items == ["3", ("a-2024-01-02", Point("3", 1))]
    assert holder.mapping == {"{{ ds }}": "6", "set": {"x3"}}  # dict keys are not rendered
    assert inner.query == "select 3" and inner.untouched == "{{ ds }}"


def test_undefined_variables_fail_like_airflow():
    holder = Holder(command="{{ missing }}")
    with pytest.raises(jinja2.UndefinedError):
        holder.render_template_fields(CONTEXT, get_template_env())


def test_airflow_filters_and_do_extension():
    env = get_template_env()
    rendered = env.from_string(
        "{{ logical_date | ds }} {{ logical_date | ds_nodash }} {{ logical_date | ts }} "
        "{{ logical_date | ts_nodash }} {{ logical_date | ts_nodash_with_tz }}"
        "{% set xs = [] %}{% do xs.append(1) %} {{ xs }}"
    ).render(CONTEXT)
    assert rendered == (
        "2024-01-02 20240102 2024-01-02T03:04:05+00:00 20240102T030405 20240102T030405+0000 [1]"
    )
    # None (a first run's prev_start_date_success) passes through each filter, as in Airflow.
    nothing = " ".join(
        f"{{{{ None | {name} }}}}" for name in ("ds", "ds_nodash", "ts", "ts_nodash", "ts_nodash_with_tz")
    )
    assert env.from_string(nothing).render(CONTEXT) == "None None None None None"


def test_template_files_are_found_next_to_the_dag_and_on_the_searchpath(tmp_path):
    (tmp_path / "dags").mkdir()
    (tmp_path / "sql").mkdir()
    (tmp_path / "dags" / "local.sql").write_text("select '{{ ds }}'")
    (tmp_path / "sql" / "shared.sql").write_text("select {{ n }}")
    dag = SimpleNamespace(
        fileloc=str(tmp_path / "dags" / "my_dag.py"), template_searchpath=str(tmp_path / "sql")
    )
    holder = Holder(command="local.sql", items=["shared.sql", "not_a_file.txt"])
    holder.render_template_fields(CONTEXT, get_template_env(dag))
    assert holder.command == "select '2024-01-02'"
    assert holder.items == ["select 3", "not_a_file.txt"]


class DagLike:
    """A DAG's settings on an object that can be weakly referenced (SimpleNamespace cannot)."""

    def __init__(self, **settings) -> None:
        self.__dict__.update(settings)


def test_a_dag_keeps_its_environment_until_a_setting_changes(tmp_path):
    dag = DagLike(fileloc=str(tmp_path / "d.py"), user_defined_macros={"project": "acme"})
    env = get_template_env(dag)
    assert get_template_env(dag) is env
    assert get_template_env(DagLike(fileloc=dag.fileloc)) is not env  # another DAG, its own
    dag.user_defined_macros["team"] = "data"  # a macro added in place
    added = get_template_env(dag)
    assert added is not env and added.globals["team"] == "data"
    dag.template_searchpath = str(tmp_path / "sql")
    assert get_template_env(dag).loader.searchpath == [str(tmp_path), str(tmp_path / "sql")]
    dag.render_template_as_native_obj = True
    assert isinstance(get_template_env(dag), NativeEnvironment)


def test_warming_builds_each_dags_environment_once(monkeypatch):
    built = []
    build = SandboxedEnvironment.__init__
    monkeypatch.setattr(SandboxedEnvironment, "__init__", lambda env, **kw: built.append(build(env, **kw)))
    dags = [DagLike(fileloc="/bundle/a.py"), DagLike(fileloc="/bundle/b.py")]
    warm_template_envs(dags)
    assert len(built) == 2
    assert get_template_env(dags[0]) is not get_template_env(dags[1])
    assert len(built) == 2


def test_missing_template_file_fails():
    holder = Holder(command="nowhere.sql")
    with pytest.raises(jinja2.TemplateNotFound):
        holder.render_template_fields(CONTEXT, get_template_env())


def test_resolve_template_files_reads_the_file_into_the_field(tmp_path):
    (tmp_path / "q.sql").write_text("select {{ n }}")
    holder = Holder(command="q.sql")
    holder.dag = SimpleNamespace(fileloc=str(tmp_path / "d.py"))
    holder.resolve_template_files()
    assert holder.command == "select {{ n }}"


def test_user_defined_macros_filters_and_native_rendering():
    dag = SimpleNamespace(
        user_defined_macros={"project": "acme", "double": lambda x: x * 2},
        user_defined_filters={"shout": lambda s: s.upper() + "!"},
        render_template_as_native_obj=True,
    )
    holder = Holder(
        command="{{ double(n) }}", items="{{ [project | shout, n] }}", mapping={"k": "{{ {'a': n} }}"}
    )
    holder.render_template_fields(CONTEXT, get_template_env(dag))
    assert holder.command == 6
    assert holder.items == ["ACME!", 3]
    assert holder.mapping == {"k": {"a": 3}}


def test_string_rendering_without_native_keeps_strings():
    dag = SimpleNamespace(user_defined_macros={"double": lambda x: x * 2})
    holder = Holder(command="{{ double(n) }}")
    holder.render_template_fields(CONTEXT, get_template_env(dag))
    assert holder.command == "6"


def test_literal_values_and_falsy_fields_are_left_alone():
    holder = Holder(command=literal("{{ not rendered }}"), items=[], empty="")
    holder.render_template_fields(CONTEXT, get_template_env())
    assert holder.command == "{{ not rendered }}"
    assert holder.items == [] and holder.empty == ""


def test_callable_template_field_gets_context_and_env():
    holder = Holder(command=lambda context, jinja_env: f"computed {context['n']}")
    holder.render_template_fields(CONTEXT, get_template_env())
    assert holder.command == "computed 3"


def test_sandbox_refuses_dunder_attributes_but_allows_single_underscore():
    env = get_template_env()
    obj = SimpleNamespace(_private="ok")
    assert env.from_string("{{ obj._private }}").render(obj=obj) == "ok"
    with pytest.raises(jinja2.exceptions.SecurityError):
        env.from_string("{{ obj.__class__.__mro__ }}").render(obj=obj)


def test_missing_template_field_attribute_is_reported():
    class Broken(Templater):
        template_fields = ("nope",)

    with pytest.raises(AttributeError, match="'nope' is configured as a template field"):
        Broken().render_template_fields(CONTEXT, get_template_env())


def test_datetimes_and_other_objects_pass_through():
    moment = datetime.datetime(2024, 1, 1)
    holder = Holder(command=moment, items=[5, None])
    holder.render_template_fields(CONTEXT, get_template_env())
    assert holder.command is moment and holder.items == [5, None]


PLAIN_TEXTS = [
    "true",
    "",
    "\n",
    "echo done\n",
    "a\r\nb\rc\n\n",
    "SELECT 1;  \n\n",
    "50% } { #} %} }}",
    "ünï ✓\r\n",
]


@pytest.mark.parametrize(
    "options", [{}, {"keep_trailing_newline": True}, {"newline_sequence": "\r\n"}, {"autoescape": True}]
)
@pytest.mark.parametrize("text", PLAIN_TEXTS)
def test_text_without_jinja_syntax_is_given_back_as_jinja_renders_it(text, options):
    env = SandboxedEnvironment(**options)
    assert _as_plain_text(env, text) == env.from_string(text).render({})


def test_text_jinja_must_render_is_left_to_jinja():
    env = SandboxedEnvironment()
    assert [_as_plain_text(env, text) for text in ["{{ ds }}", "x {% if y %}", "{# note #}"]] == [None] * 3
    brackets = SandboxedEnvironment(variable_start_string="[[", variable_end_string="]]")
    assert _as_plain_text(brackets, "echo [[ ds ]]") is None
    assert (
        _as_plain_text(brackets, "echo {{ ds }}")
        == "echo {{ ds }}"
        == brackets.from_string("echo {{ ds }}").render()
    )
    assert _as_plain_text(SandboxedEnvironment(line_statement_prefix="#"), "# for x in y") is None
    assert _as_plain_text(NativeEnvironment(), "1") is None  # native rendering makes it the number 1


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, False),  # every field falsy
        ({"items": [1, 2.5, None, datetime.date(2024, 1, 1)], "mapping": {"k": (True, 3)}}, False),
        ({"items": [1, ["deep {{ ds }}"]]}, True),
        ({"mapping": {"k": literal(1)}}, True),  # unwrapped when rendered
        ({"command": "true"}, True),  # plain text still goes through the renderer (it may name a file)
        ({"command": lambda context, jinja_env: "x"}, True),
        ({"nested": Inner("select 1")}, True),
    ],
)
def test_has_templates_says_whether_rendering_could_change_a_field(values, expected):
    holder = Holder(**values)
    assert holder.has_templates() is expected
    if not expected:  # and rendering indeed changes nothing
        before = {field: getattr(holder, field) for field in holder.template_fields}
        holder.render_template_fields(CONTEXT, get_template_env())
        assert {field: getattr(holder, field) for field in holder.template_fields} == before


def test_has_templates_is_true_for_objects_that_render_their_own_way():
    class Custom(Holder):
        def render_template_fields(self, context, jinja_env=None):
            self.command = "rendered my way"

    class Missing(Templater):
        template_fields = ("nope",)

    assert Custom().has_templates() and Missing().has_templates()  # the renderer reports the missing field
