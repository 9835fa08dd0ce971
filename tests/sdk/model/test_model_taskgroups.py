"""Task groups: id prefixes, nesting, group dependencies, the @task_group decorator, mapped groups."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.sdk.model.model_helpers import Op
from tradewind.sdk import DAG, TaskGroup, task_group
from tradewind.sdk.exceptions import AirflowException, DuplicateTaskIdFound
from tradewind.sdk.taskgroup import MappedTaskGroup
from tradewind.sdk.xcom_arg import MappedArgument

START = datetime(2024, 1, 1, tzinfo=UTC)


def edges(dag: DAG) -> set[tuple[str, str]]:
    return {(t.task_id, down) for t in dag.tasks for down in t.downstream_task_ids}


def test_nested_prefixes_and_labels():
    with DAG("d", start_date=START) as dag, TaskGroup("outer") as outer:
        with TaskGroup("inner") as inner:
            deep = Op(task_id="deep")
        Op(task_id="shallow")
    assert sorted(dag.task_ids) == ["outer.inner.deep", "outer.shallow"]
    assert inner.group_id == "outer.inner" and inner.label == "inner"
    assert deep.label == "deep" and deep.task_group is inner
    assert set(dag.task_group_dict) == {None, "outer", "outer.inner"}
    assert outer.get_child_by_label("inner") is inner


def test_group_without_prefix():
    with DAG("d", start_date=START) as dag, TaskGroup("plain", prefix_group_id=False) as plain:
        Op(task_id="t")
        with TaskGroup("sub"):
            Op(task_id="u")
    assert sorted(dag.task_ids) == ["sub.u", "t"]
    assert plain.group_id == "plain"


def test_group_and_task_ids_share_one_namespace():
    with DAG("d", start_date=START):
        TaskGroup("g")
        with pytest.raises(DuplicateTaskIdFound, match="group_id 'g' has already been added"):
            TaskGroup("g")
        with pytest.raises(DuplicateTaskIdFound):
            Op(task_id="g")


def test_duplicate_task_in_group():
    with DAG("d", start_date=START), TaskGroup("g"):
        Op(task_id="t")
        with pytest.raises(DuplicateTaskIdFound):
            Op(task_id="t")


def test_group_ids_may_not_contain_dots():
    with DAG("d", start_date=START), pytest.raises(ValueError):
        TaskGroup("a.b")


def test_group_needs_a_dag():
    with pytest.raises(AirflowException, match="inside a dag"):
        TaskGroup("lonely")


def test_group_to_group_and_group_to_task():
    with DAG("d", start_date=START) as dag:
        start = Op(task_id="start")
        with TaskGroup("g1") as g1:
            a, b = Op(task_id="a"), Op(task_id="b")
            c = Op(task_id="c")
            [a, b] >> c
        with TaskGroup("g2") as g2:
            x, y = Op(task_id="x"), Op(task_id="y")
        end = Op(task_id="end")
        start >> g1 >> g2 >> end
    assert edges(dag) == {
        ("start", "g1.a"),
        ("start", "g1.b"),
        ("g1.a", "g1.c"),
        ("g1.b", "g1.c"),
        ("g1.c", "g2.x"),
        ("g1.c", "g2.y"),
        ("g2.x", "end"),
        ("g2.y", "end"),
    }
    assert {t.task_id for t in g1.roots} == {"g1.a", "g1.b"}
    assert g2.upstream_group_ids == {"g1"} and g1.downstream_group_ids == {"g2"}
    assert x in list(g2) and y in list(g2) and end not in list(g2)


def test_explicit_parent_group_and_dag_arguments():
    dag = DAG("d", start_date=START)
    parent = TaskGroup("parent", dag=dag)
    child = TaskGroup("child", parent_group=parent)
    op = Op(task_id="t", dag=dag, task_group=child)
    assert op.task_id == "parent.child.t"
    assert dag.get_task("parent.child.t") is op


def test_topological_sort_of_group_children():
    with DAG("d", start_date=START), TaskGroup("root_like") as group:
        last = Op(task_id="last")
        with TaskGroup("middle") as middle:
            inner = Op(task_id="inner")
        first = Op(task_id="first")
        first >> inner >> last
    assert group.topological_sort() == [first, middle, last]


def test_task_group_decorator_creates_groups_with_suffixes():
    @task_group
    def section(command):
        """Section tooltip."""
        first = Op(task_id="first", command=command)
        second = Op(task_id="second")
        first >> second

    with DAG("d", start_date=START) as dag:
        g1 = section("one")
        g2 = section("two")
        g1 >> g2
    assert isinstance(g1, TaskGroup) and g1.group_id == "section" and g2.group_id == "section__1"
    assert g1.tooltip == "Section tooltip."
    assert dag.get_task("section__1.first").command == "two"
    assert ("section.second", "section__1.first") in edges(dag)


def test_task_group_decorator_with_arguments_and_override():
    @task_group(group_id="custom", tooltip="tip", default_args={"retries": 4})
    def section():
        return Op(task_id="only")

    with DAG("d", start_date=START) as dag:
        returned = section()
        again = section.override(group_id="other")()
    assert returned is dag.get_task("custom.only")  # a returned task is forwarded
    assert returned.retries == 4
    assert again.task_id == "other.only"


def test_task_group_decorator_forwards_any_returned_value():
    @task_group
    def pair():
        return [Op(task_id="a"), Op(task_id="b")]

    with DAG("d", start_date=START) as dag:
        first, second = pair()
        first >> Op(task_id="after_a")
        second.task_group >> Op(task_id="after_group")
    assert ("pair.a", "after_a") in edges(dag) and ("pair.b", "after_a") not in edges(dag)
    assert {("pair.a", "after_group"), ("pair.b", "after_group")} <= edges(dag)


def test_task_group_string_argument_is_the_group_id():
    @task_group("named")
    def section():
        Op(task_id="t")

    with DAG("d", start_date=START) as dag:
        section()
    assert dag.task_ids == ["named.t"]


def test_mapped_task_group_passes_mapped_arguments():
    @task_group
    def per_item(item, fixed):
        return Op(task_id="work", command=item, flavour=fixed)

    with DAG("d", start_date=START) as dag:
        source = Op(task_id="source")
        work = per_item.partial(fixed="f").expand(item=source.output)
    group = dag.task_group_dict["per_item"]
    assert isinstance(group, MappedTaskGroup)
    assert isinstance(work.command, MappedArgument) and work.flavour == "f"
    assert work.get_closest_mapped_task_group() is group
    assert work.upstream_task_ids == {"source"}
    with DAG("e", start_date=START), pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        per_item.expand(nope=[1])


def test_mapped_task_group_refuses_unmappable_values():
    @task_group
    def per_item(item):
        Op(task_id="work")

    with DAG("d", start_date=START), pytest.raises(ValueError, match="unexpected type 'int'"):
        per_item.expand(item=3)
