"""Task mapping: partial/expand validation, the serialized expand input, map lengths, resolving and unmapping."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.sdk.model.model_helpers import Op, SubOp
from tradewind.sdk import DAG, BaseOperator, MappedOperator, TaskGroup, XComArg, task_group
from tradewind.sdk.exceptions import NotFullyPopulated, UnmappableXComTypePushed
from tradewind.sdk.execution import set_client
from tradewind.sdk.mappedoperator import get_mapped_length, mapping_references
from tradewind.sdk.serialization import mapped_length, mapping_upstreams, serialize_dag

START = datetime(2024, 1, 1, tzinfo=UTC)


class XComStore:
    """The execution Client's xcom_pull, over a dict of (task_id, key, map_index) -> value."""

    def __init__(self, values: dict[tuple[str, str, int], Any]) -> None:
        self.values = values

    def xcom_pull(
        self,
        *,
        dag_id: str,
        run_id: str,
        task_ids: list[str],
        key: str,
        map_indexes: list[int] | None,
        include_prior_dates: bool = False,
    ):
        return [
            {"task_id": t, "map_index": i, "value": v}
            for (t, k, i), v in self.values.items()
            if t in task_ids and k == key and (map_indexes is None or i in map_indexes)
        ]


class TI:
    def __init__(self, task: Any, map_index: int) -> None:
        self.dag_id = "d"
        self.run_id = "r"
        self.task = task
        self.map_index = map_index


@pytest.fixture
def xcoms() -> Iterator[dict]:
    values: dict[tuple[str, str, int], Any] = {}
    set_client(XComStore(values))  # type: ignore[arg-type]
    yield values
    set_client(None)


def context_for(task: Any, map_index: int) -> dict[str, Any]:
    return {"ti": TI(task, map_index)}


def test_partial_expand_builds_a_mapped_operator_with_partial_attributes():
    with DAG("d", start_date=START, default_args={"retries": 2, "owner": "team"}) as dag, TaskGroup("g"):
        mapped = Op.partial(task_id="m", retry_delay=10, trigger_rule="all_done", flavour="f").expand(
            command=["a", "b", "c"]
        )
    assert isinstance(mapped, MappedOperator) and mapped.is_mapped
    assert dag.get_task("g.m") is mapped and mapped.task_type == "Op"
    assert (mapped.retries, mapped.owner, mapped.retry_delay) == (2, "team", timedelta(seconds=10))
    assert str(mapped.trigger_rule) == "all_done" and mapped.pool == "default_pool"
    assert mapped.get_parse_time_mapped_ti_count() == 3


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: Op.partial(task_id="m").expand(), TypeError, "no arguments to expand against"),
        (
            lambda: Op.partial(task_id="m").expand(nope=[1]),
            TypeError,
            "Op.expand\\(\\) got an unexpected keyword argument 'nope'",
        ),
        (
            lambda: Op.partial(task_id="m").expand(command="a"),
            ValueError,
            "unexpected type 'str' for keyword argument command",
        ),
        (lambda: Op.partial(task_id="m").expand(command=5), ValueError, "unexpected type 'int'"),
        (
            lambda: Op.partial(task_id="m", command="x").expand(command=["y"]),
            TypeError,
            "already specified argument: command",
        ),
        (lambda: Op.partial(task_id="m").expand(task_id=["a"]), TypeError, "unmappable or already specified"),
        (
            lambda: Op.partial(task_id="m", bogus=1),
            TypeError,
            "Op.partial\\(\\) got an unexpected keyword argument 'bogus'",
        ),
        (lambda: Op.partial(command="x"), TypeError, "task_id"),
        (
            lambda: Op.partial(task_id="m").expand_kwargs("nope"),
            TypeError,
            "expected XComArg or list\\[dict\\]",
        ),
        (lambda: Op.partial(task_id="m").expand_kwargs([1]), TypeError, "expected XComArg or list\\[dict\\]"),
    ],
)
def test_mapping_validation(build, error, message):
    with DAG("d", start_date=START), pytest.raises(error, match=message):
        build()


def test_cannot_map_over_a_custom_xcom_key():
    with DAG("d", start_date=START), pytest.raises(ValueError, match="custom key 'other'"):
        source = Op(task_id="source")
        Op.partial(task_id="m").expand(command=XComArg(source, key="other"))


def test_subclass_arguments_are_mappable():
    with DAG("d", start_date=START):
        mapped = SubOp.partial(task_id="m", command="c").expand(level=[1, 2])
    assert mapped.get_parse_time_mapped_ti_count() == 2


def test_expand_input_serialization_and_lengths():
    with DAG("d", start_date=START) as dag:
        source = Op(task_id="source")
        other = Op(task_id="other")
        product = Op.partial(task_id="product").expand(command=source.output, flavour=["x", "y"])
        zipped = Op.partial(task_id="zipped").expand(command=source.output.zip(other.output))
        concat = Op.partial(task_id="concat").expand(command=source.output.concat(other.output.map(str)))
        kwargs = Op.partial(task_id="kwargs").expand_kwargs([{"command": "a"}, {"command": "b"}])
        downstream = Op.partial(task_id="downstream").expand(command=product.output)
    serialized = serialize_dag(dag)
    by_id = {t["task_id"]: t for t in serialized["tasks"]}
    assert by_id["product"]["expand_input"] == {
        "kind": "product",
        "args": {
            "command": {"xcom": {"task_id": "source", "key": "return_value"}, "upstream_mapped": False},
            "flavour": {"literal": ["x", "y"], "length": 2},
        },
    }
    assert by_id["downstream"]["expand_input"]["args"]["command"]["upstream_mapped"] is True
    assert product.upstream_task_ids == {"source"} and downstream.upstream_task_ids == {"product"}
    lengths = {"source": 3, "other": 5, "product": 6}
    assert get_mapped_length(by_id["product"]["expand_input"], lengths) == 6
    assert get_mapped_length(by_id["zipped"]["expand_input"], lengths) == 3
    assert get_mapped_length(by_id["concat"]["expand_input"], lengths) == 8
    assert get_mapped_length(by_id["kwargs"]["expand_input"], {}) == 2
    assert mapping_references(by_id["concat"]["expand_input"]) == ["source", "other"]
    assert mapped_length(serialized, "downstream", lengths) == 6
    assert mapped_length(serialized, "source", lengths) is None
    assert mapping_upstreams(serialized, "zipped") == ["source", "other"]
    with pytest.raises(NotFullyPopulated, match="source"):
        get_mapped_length(by_id["product"]["expand_input"], {})
    assert zipped.is_mapped and concat.is_mapped and kwargs.is_mapped


def test_mapped_task_group_length_from_the_serialized_dag():
    @task_group
    def per_item(item):
        Op(task_id="work", command=item)

    with DAG("d", start_date=START) as dag:
        source = Op(task_id="source")
        per_item.expand(item=source.output)
    serialized = serialize_dag(dag)
    work = next(t for t in serialized["tasks"] if t["task_id"] == "per_item.work")
    assert work["mapped_group_id"] == "per_item" and work["is_mapped"] is False
    assert mapped_length(serialized, "per_item.work", {"source": 4}) == 4
    assert mapping_upstreams(serialized, "per_item.work") == ["source"]


def test_resolve_product_for_each_map_index(xcoms):
    with DAG("d", start_date=START):
        source = Op(task_id="source")
        mapped = Op.partial(task_id="m").expand(command=source.output, flavour=["x", "y"])
    xcoms[("source", "return_value", -1)] = ["a", "b", "c"]
    combos = [mapped.resolve_expand_input(context_for(mapped, i)) for i in range(6)]
    assert combos == [
        {"command": "a", "flavour": "x"},
        {"command": "a", "flavour": "y"},
        {"command": "b", "flavour": "x"},
        {"command": "b", "flavour": "y"},
        {"command": "c", "flavour": "x"},
        {"command": "c", "flavour": "y"},
    ]
    with pytest.raises(IndexError):
        mapped.resolve_expand_input(context_for(mapped, 6))


def test_mapping_over_a_dict_gives_key_value_pairs(xcoms):
    with DAG("d", start_date=START):
        mapped = Op.partial(task_id="m").expand(command={"k1": "v1", "k2": "v2"})
    assert mapped.resolve_expand_input(context_for(mapped, 1)) == {"command": ("k2", "v2")}


def test_mapping_over_a_mapped_upstream_and_map_zip(xcoms):
    with DAG("d", start_date=START):
        first = Op.partial(task_id="first").expand(command=["a", "b"])
        second = Op(task_id="second")
        upper = Op.partial(task_id="upper").expand(command=first.output.map(str.upper))
        pairs = Op.partial(task_id="pairs").expand(command=first.output.zip(second.output, fillvalue="-"))
    xcoms[("first", "return_value", 1)] = "b"
    xcoms[("first", "return_value", 0)] = "a"
    xcoms[("second", "return_value", -1)] = [1]
    assert [upper.resolve_expand_input(context_for(upper, i))["command"] for i in range(2)] == ["A", "B"]
    assert pairs.resolve_expand_input(context_for(pairs, 1)) == {"command": ("b", "-")}


def test_unmappable_upstream_value(xcoms):
    with DAG("d", start_date=START):
        source = Op(task_id="source")
        mapped = Op.partial(task_id="m").expand(command=source.output)
    xcoms[("source", "return_value", -1)] = 42
    with pytest.raises(UnmappableXComTypePushed):
        mapped.resolve_expand_input(context_for(mapped, 0))


def test_expand_kwargs_resolution(xcoms):
    with DAG("d", start_date=START):
        source = Op(task_id="source")
        from_xcom = Op.partial(task_id="from_xcom").expand_kwargs(source.output)
        literal = Op.partial(task_id="literal").expand_kwargs([{"command": source.output}, {"command": "b"}])
    xcoms[("source", "return_value", -1)] = [{"command": "x", "flavour": "y"}]
    assert from_xcom.resolve_expand_input(context_for(from_xcom, 0)) == {"command": "x", "flavour": "y"}
    assert literal.resolve_expand_input(context_for(literal, 0)) == {
        "command": [{"command": "x", "flavour": "y"}]
    }
    assert literal.upstream_task_ids == {"source"}


def test_unmap_gives_a_real_operator_outside_the_dag(xcoms):
    with DAG("d", start_date=START, default_args={"retries": 5}) as dag, TaskGroup("g"):
        before = Op(task_id="before")
        mapped = Op.partial(task_id="m", flavour="f").expand(command=["a", "b"])
        before >> mapped
    mapped.as_teardown()
    operator = mapped.unmap_with_context(context_for(mapped, 1))
    assert isinstance(operator, Op) and not isinstance(operator, MappedOperator)
    assert (operator.task_id, operator.command, operator.flavour, operator.retries) == ("g.m", "b", "f", 5)
    assert operator.dag is dag and dag.get_task("g.m") is mapped
    assert operator.upstream_task_ids == {"g.before"} and operator.is_teardown
    assert str(operator.trigger_rule) == "all_done_setup_success"


def test_unmap_merges_into_a_dict_argument_for_decorated_tasks():
    class Kwargs(BaseOperator):
        template_fields = ("op_kwargs",)

        def __init__(self, *, op_kwargs: dict | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.op_kwargs = op_kwargs or {}

    with DAG("d", start_date=START):
        partial = Kwargs.partial(task_id="m", op_kwargs={"fixed": 1})
        mapped = partial._expand(partial_input := _input(x=[1, 2]), mapped_kwargs_field="op_kwargs")
    assert mapped.expand_input is partial_input
    assert mapped.unmap({"x": 2}).op_kwargs == {"fixed": 1, "x": 2}


def _input(**kwargs: Any) -> Any:
    from tradewind.sdk.mappedoperator import DictOfListsExpandInput

    return DictOfListsExpandInput(kwargs)


def test_xcomarg_resolution(xcoms):
    with DAG("d", start_date=START):
        plain = Op(task_id="plain")
        mapped = Op.partial(task_id="mapped").expand(command=["a", "b"])
        consumer = Op(task_id="consumer")
    xcoms[("plain", "return_value", -1)] = {"v": 1}
    xcoms[("plain", "extra", -1)] = "e"
    xcoms[("mapped", "return_value", 0)] = "A"
    xcoms[("mapped", "return_value", 1)] = "B"
    ctx = context_for(consumer, -1)
    assert plain.output.resolve(ctx) == {"v": 1}
    assert plain.output["extra"].resolve(ctx) == "e"
    assert mapped.output.resolve(ctx) == ["A", "B"]
    assert consumer.output.resolve(ctx) is None  # a return value never pushed resolves to None
    with pytest.raises(Exception, match="not found"):
        consumer.output["missing"].resolve(ctx)


def test_xcomarg_inside_the_same_mapped_group_reads_its_own_index(xcoms):
    @task_group
    def per_item(item):
        first = Op(task_id="first", command=item)
        second = Op(task_id="second", command=first.output)
        return second

    with DAG("d", start_date=START):
        source = Op(task_id="source")
        second = per_item.expand(item=source.output)
    first = second.dag.get_task("per_item.first")
    xcoms[("source", "return_value", -1)] = ["p", "q"]
    xcoms[("per_item.first", "return_value", 0)] = "P"
    xcoms[("per_item.first", "return_value", 1)] = "Q"
    assert second.command.resolve(context_for(second, 1)) == "Q"
    assert first.command.resolve(context_for(first, 0)) == "p"  # the group's mapped argument
