"""Every way of declaring dependencies: operators, lists, groups, XComArgs, labels, chain helpers, setup/teardown."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.sdk.model.model_helpers import Op
from tradewind.sdk import DAG, Label, TaskGroup, TriggerRule, XComArg, chain, chain_linear, cross_downstream
from tradewind.sdk.exceptions import AirflowException

START = datetime(2024, 1, 1, tzinfo=UTC)


def edges(dag: DAG) -> set[tuple[str, str]]:
    return {(t.task_id, down) for t in dag.tasks for down in t.downstream_task_ids}


def make(dag: DAG, *ids: str) -> list[Op]:
    return [Op(task_id=i, dag=dag) for i in ids]


def test_shift_operators_and_their_return_values():
    dag = DAG("d", start_date=START)
    a, b, c, d = make(dag, "a", "b", "c", "d")
    assert (a >> b) is b
    assert (c << b) is b
    d.set_upstream(c)
    assert edges(dag) == {("a", "b"), ("b", "c"), ("c", "d")}
    assert b.upstream_task_ids == {"a"} and b.downstream_task_ids == {"c"}
    assert [t.task_id for t in b.upstream_list] == ["a"]


def test_lists_on_either_side():
    dag = DAG("d", start_date=START)
    a, b, c, d, e = make(dag, "a", "b", "c", "d", "e")
    result = a >> [b, c]
    assert result == [b, c]
    [b, c] >> d  # list on the left: the task's __rrshift__
    e << [b, c]
    a.set_downstream((e,))
    assert edges(dag) == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("b", "e"), ("c", "e"), ("a", "e")}


def test_relationships_with_a_non_node_raise():
    dag = DAG("d", start_date=START)
    (a,) = make(dag, "a")
    with pytest.raises(TypeError):
        a >> "b"


def test_tasks_in_two_dags_cannot_be_related():
    a = Op(task_id="a", dag=DAG("one", start_date=START))
    b = Op(task_id="b", dag=DAG("two", start_date=START))
    with pytest.raises(AirflowException, match="more than one DAG"):
        a >> b


def test_relating_to_a_task_without_dag_adds_it_to_the_dag():
    dag = DAG("d", start_date=START)
    (a,) = make(dag, "a")
    loose = Op(task_id="loose")
    a >> loose
    assert dag.get_task("loose") is loose


def test_chain_with_single_tasks_and_lists():
    dag = DAG("d", start_date=START)
    a, b, c, d = make(dag, "a", "b", "c", "d")
    chain(a, [b, c], d)
    assert edges(dag) == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}


def test_chain_pairs_equal_length_lists():
    dag = DAG("d", start_date=START)
    a, b, c, d, e, f = make(dag, "a", "b", "c", "d", "e", "f")
    chain([a, b], [c, d], [e, f])
    assert edges(dag) == {("a", "c"), ("b", "d"), ("c", "e"), ("d", "f")}


def test_chain_refuses_lists_of_different_length():
    dag = DAG("d", start_date=START)
    a, b, c = make(dag, "a", "b", "c")
    with pytest.raises(AirflowException, match="different length"):
        chain([a, b], [c])


def test_cross_downstream():
    dag = DAG("d", start_date=START)
    a, b, c, d = make(dag, "a", "b", "c", "d")
    cross_downstream([a, b], [c, d])
    assert edges(dag) == {("a", "c"), ("a", "d"), ("b", "c"), ("b", "d")}


def test_chain_linear_connects_every_element_to_the_next():
    dag = DAG("d", start_date=START)
    a, b, c, d, e = make(dag, "a", "b", "c", "d", "e")
    chain_linear(a, [b, c], [d, e])
    assert edges(dag) == {("a", "b"), ("a", "c"), ("b", "d"), ("b", "e"), ("c", "d"), ("c", "e")}
    with pytest.raises(ValueError):
        chain_linear(a)


def test_labels_in_both_directions_and_with_lists():
    dag = DAG("d", start_date=START)
    a, b, c, d, e = make(dag, "a", "b", "c", "d", "e")
    a >> Label("first") >> b
    c << Label("back") << b
    [c, d] >> Label("many") >> e
    assert dag.get_edge_info("a", "b") == {"label": "first"}
    assert dag.get_edge_info("b", "c") == {"label": "back"}
    assert dag.get_edge_info("c", "e") == {"label": "many"} == dag.get_edge_info("d", "e")
    assert dag.get_edge_info("a", "c") == {}
    assert edges(dag) == {("a", "b"), ("b", "c"), ("c", "e"), ("d", "e")}


def test_chain_with_labels_and_xcomargs():
    dag = DAG("d", start_date=START)
    a, b, c = make(dag, "a", "b", "c")
    chain(a.output, Label("to b"), b, [c])
    assert edges(dag) == {("a", "b"), ("b", "c")}
    assert dag.get_edge_info("a", "b") == {"label": "to b"}


def test_label_between_groups():
    with DAG("d", start_date=START) as dag:
        with TaskGroup("g1") as g1:
            Op(task_id="x")
        with TaskGroup("g2") as g2:
            Op(task_id="y")
        g1 >> Label("between") >> g2
    assert edges(dag) == {("g1.x", "g2.y")}
    assert dag.get_edge_info("g1.x", "g2.y") == {"label": "between"}


def test_xcomarg_in_a_template_field_makes_an_upstream():
    with DAG("d", start_date=START):
        producer = Op(task_id="producer")
        consumer = Op(task_id="consumer", command=producer.output)
        nested = Op(task_id="nested", command={"k": [XComArg(producer, key="other")]})
    assert consumer.upstream_task_ids == {"producer"}
    assert nested.upstream_task_ids == {"producer"}


def test_xcomarg_only_counts_in_template_fields():
    with DAG("d", start_date=START):
        producer = Op(task_id="producer")
        consumer = Op(task_id="consumer", flavour=producer.output)  # flavour is not templated
    assert consumer.upstream_task_ids == set()


def test_assigning_an_xcomarg_to_a_template_field_later_adds_the_dependency():
    with DAG("d", start_date=START):
        producer = Op(task_id="producer")
        consumer = Op(task_id="consumer")
    consumer.command = producer.output
    assert consumer.upstream_task_ids == {"producer"}


def test_xcomargs_as_dependency_nodes():
    with DAG("d", start_date=START) as dag:
        a, b, c = Op(task_id="a"), Op(task_id="b"), Op(task_id="c")
        a.output >> b.output
        [a.output] >> c
    assert edges(dag) == {("a", "b"), ("a", "c")}


def test_xcomarg_subscript_and_string_form():
    with DAG("d", start_date=START):
        a = Op(task_id="a")
    other = a.output["key"]
    assert other.key == "key" and other.operator is a
    assert str(other) == "{{ task_instance.xcom_pull(task_ids='a', dag_id='d', key='key') }}"
    with pytest.raises(TypeError):
        iter(a.output)


def test_setup_teardown_flags():
    with DAG("d", start_date=START):
        create = Op(task_id="create")
        delete = Op(task_id="delete").as_teardown(setups=create, on_failure_fail_dagrun=True)
    assert create.is_setup and not create.is_teardown
    assert delete.is_teardown and delete.on_failure_fail_dagrun
    assert delete.trigger_rule == TriggerRule.ALL_DONE_SETUP_SUCCESS
    assert delete.upstream_task_ids == {"create"}


def test_on_failure_fail_dagrun_only_for_teardowns():
    op = Op(task_id="t")
    with pytest.raises(ValueError, match="not a teardown"):
        op.on_failure_fail_dagrun = True


def test_setup_teardown_context_manager_wraps_the_work_tasks():
    with DAG("d", start_date=START) as dag:
        create = Op(task_id="create").as_setup()
        delete = Op(task_id="delete").as_teardown(setups=create)
        with create >> delete:
            first = Op(task_id="first")
            second = Op(task_id="second")
            first >> second
            Op(task_id="alone")
        Op(task_id="outside")
    assert edges(dag) == {
        ("create", "delete"),
        ("create", "first"),
        ("first", "second"),
        ("second", "delete"),
        ("create", "alone"),
        ("alone", "delete"),
    }


def test_nested_setup_teardown_contexts():
    with DAG("d", start_date=START) as dag:
        outer_setup = Op(task_id="outer_setup").as_setup()
        outer_teardown = Op(task_id="outer_teardown").as_teardown(setups=outer_setup)
        with outer_setup >> outer_teardown:
            inner_setup = Op(task_id="inner_setup").as_setup()
            inner_teardown = Op(task_id="inner_teardown").as_teardown(setups=inner_setup)
            with inner_setup >> inner_teardown:
                Op(task_id="work")
    assert edges(dag) == {
        ("outer_setup", "outer_teardown"),
        ("inner_setup", "inner_teardown"),
        ("inner_setup", "work"),
        ("work", "inner_teardown"),
        ("outer_setup", "inner_setup"),
        ("inner_teardown", "outer_teardown"),
    }


def test_only_setup_or_teardown_tasks_are_context_managers():
    op = Op(task_id="t")
    with pytest.raises(AirflowException, match="Only setup/teardown tasks"), op:
        pass


def test_group_leaves_skip_teardowns():
    with DAG("d", start_date=START) as dag:
        with TaskGroup("g") as group:
            setup = Op(task_id="setup").as_setup()
            work = Op(task_id="work")
            teardown = Op(task_id="teardown").as_teardown(setups=setup)
            setup >> work >> teardown
        after = Op(task_id="after")
        group >> after
    assert {t.task_id for t in group.leaves} == {"g.work"}
    assert after.upstream_task_ids == {"g.work"}
    assert ("g.teardown", "after") not in edges(dag)
