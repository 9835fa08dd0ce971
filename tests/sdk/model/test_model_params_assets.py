"""Params (JSON-schema validation, conf overrides) and assets (conditions, serialization, @asset)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from tradewind.sdk import (
    DAG,
    Asset,
    AssetAlias,
    AssetAll,
    AssetAny,
    DagContext,
    Dataset,
    Metadata,
    Param,
    ParamsDict,
    asset,
)
from tradewind.sdk.assets import AssetRef, condition_from_serialized
from tradewind.sdk.exceptions import ParamValidationError
from tradewind.sdk.params import NOTSET

START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("param", "good", "bad"),
    [
        (Param(1, type="integer", minimum=0, maximum=10), 10, 11),
        (Param("a", enum=["a", "b"]), "b", "c"),
        (Param("2024-01-01", type="string", format="date"), "2024-12-31", "31/12/2024"),
        (Param("x@example.com", type="string", format="email"), "y@example.com", "not-an-email"),
        (Param([1], type="array", items={"type": "integer"}, minItems=1), [1, 2], []),
        (Param("abc", type="string", minLength=2, maxLength=3), "ab", "abcd"),
        (Param(None, type=["null", "string"]), "s", 3),
    ],
)
def test_param_schema_validation(param, good, bad):
    assert param.resolve(good) == good
    with pytest.raises(ParamValidationError):
        param.resolve(bad)
    assert param.resolve(bad, suppress_exception=True) is None


def test_param_without_value():
    param = Param(type="string", description="needed")
    assert not param.has_value and param.value is NOTSET
    with pytest.raises(ParamValidationError, match="No value passed"):
        param.resolve()
    assert param.serialize() == {
        "default": None,
        "has_default": False,
        "description": "needed",
        "schema": {"type": "string"},
    }


def test_param_default_must_be_json():
    with pytest.raises(ParamValidationError, match="json-serializable"):
        Param(datetime(2024, 1, 1))


def test_params_dict_reads_values_and_validates_writes():
    params = ParamsDict({"n": Param(1, type="integer"), "plain": "v"})
    assert params["n"] == 1 and params["plain"] == "v"
    assert isinstance(params.get_param("plain"), Param)
    assert [type(v) for v in params.values()] == [Param, Param]
    params["n"] = 5
    assert params["n"] == 5
    with pytest.raises(ParamValidationError, match="Invalid input for param n"):
        params["n"] = "five"
    params["new"] = [1]
    assert params.dump() == {"n": 5, "plain": "v", "new": [1]}


def test_params_resolve_applies_conf_and_validates():
    params = ParamsDict({"n": Param(1, type="integer"), "name": Param(type="string")})
    with pytest.raises(ParamValidationError, match="Invalid input for param name"):
        params.resolve({})
    assert params.resolve({"name": "x", "extra": True}) == {"n": 1, "name": "x", "extra": True}
    assert params["n"] == 1 and "extra" not in params  # resolve works on a copy
    with pytest.raises(ParamValidationError):
        params.resolve({"name": "x", "n": "bad"})
    with pytest.raises(ParamValidationError):
        params.resolve({"name": "x"}, dag_run_conf_overrides_params=False)  # conf ignored: name stays unset
    only_n = ParamsDict({"n": Param(1, type="integer")})
    assert only_n.resolve({"n": "bad"}, dag_run_conf_overrides_params=False) == {"n": 1}


def test_params_copies_are_independent():
    params = ParamsDict({"n": Param(1, type="integer")})
    clone = copy.deepcopy(params)
    clone["n"] = 2
    assert params["n"] == 1 and clone["n"] == 2
    assert ParamsDict.deserialize(params.serialize()) == params


def test_asset_names_uris_and_dataset_alias():
    assert Dataset is Asset
    by_uri = Asset("S3://bucket/key")
    assert by_uri.uri == "s3://bucket/key" and by_uri.name == "S3://bucket/key"
    named = Asset(name="orders", uri="s3://bucket/orders", group="sales", extra={"k": 1})
    assert named == Asset(name="orders", uri="s3://bucket/orders", group="sales")
    assert Dataset(uri="file:///x").uri == "file:///x"
    for bad in ("", "airflow://x", "s3://bücket"):
        with pytest.raises(ValueError):
            Asset(bad)
    with pytest.raises(TypeError):
        Asset()


def test_asset_conditions_and_their_evaluation():
    a, b, c = Asset("a"), Asset("b"), Asset("c")
    condition = (a & b) | c
    assert isinstance(condition, AssetAny) and isinstance(condition.objects[0], AssetAll)
    assert isinstance(a & b & c, AssetAll) and len((a & b & c).objects) == 3
    assert condition.evaluate({"a": True, "b": True})
    assert condition.evaluate({"c": True})
    assert not condition.evaluate({"a": True})
    assert sorted(x.uri for x in condition.iter_assets()) == ["a", "b", "c"]
    alias = AssetAlias("out")
    assert (a | alias).evaluate({"alias:out": True})


def test_asset_condition_round_trip():
    condition = (Asset("a", group="g", extra={"x": 1}) & AssetAlias("al")) | Asset.ref(name="other")
    data = condition.serialize()
    assert condition_from_serialized(data).serialize() == data
    assert isinstance(condition_from_serialized(data).objects[1], AssetRef)


def test_metadata_forms():
    assert Metadata(Asset("a"), {"rows": 3}).uri == "a"
    assert Metadata("s3://x", {"k": 1}, alias="al").alias == AssetAlias("al")
    assert Metadata(target="s3://y", extra={}).asset == Asset("s3://y")


def test_asset_decorator_defines_a_dag_producing_the_asset():
    DagContext.current_autoregister_module_name = "assets_module"
    try:

        @asset(schedule="@daily", uri="s3://bucket/report", start_date=START)
        def report(context, raw_orders):
            """Daily report."""
            return 1

    finally:
        DagContext.current_autoregister_module_name = None
    assert isinstance(report, Asset) and report.name == "report" and report.uri == "s3://bucket/report"
    dag = report.dag
    assert isinstance(dag, DAG) and dag.dag_id == "report" and dag.doc_md == "Daily report."
    task = dag.get_task("__main__")
    assert task.outlets == [report]
    assert [(type(i), i.name) for i in task.inlets] == [(AssetRef, "raw_orders")]
    assert [d for d, _ in DagContext.autoregistered_dags] == [dag]
    downstream = DAG("downstream", start_date=START, schedule=[report])
    assert downstream.timetable.asset_condition.objects == [report]


def test_asset_multi_defines_one_dag_producing_every_outlet_and_schedules_as_all_of_them():
    a, b = Asset("part_a"), Asset("part_b")

    @asset.multi(outlets=[a, b], schedule=None, start_date=START)
    def parts(self, upstream, batch_size=10):
        pass

    dag = parts.dag
    assert dag.dag_id == "parts"
    task = dag.get_task("__main__")
    assert task.outlets == [a, b]
    # A parameter with a default is not an inlet; self names no asset.
    assert [i.name for i in task.inlets] == ["upstream"]
    consumer = DAG("consumer", start_date=START, schedule=parts)
    assert consumer.timetable.asset_condition.evaluate({"part_a": True}) is False
    assert consumer.timetable.asset_condition.evaluate({"part_a": True, "part_b": True}) is True


def test_asset_functions_refuse_wildcard_parameters_and_multi_needs_outlets():
    with pytest.raises(TypeError, match=r"wildcard '\*\*kwargs' is not supported in @asset"):

        @asset(schedule=None)
        def takes_anything(**kwargs):
            pass

    with pytest.raises(ValueError, match="no outlets provided"):

        @asset.multi(outlets=[], schedule=None)
        def produces_nothing():
            pass
