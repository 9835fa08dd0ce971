"""Airflow 3.1's for_asset / for_asset_alias on inlet_events, outlet_events and triggering_asset_events, and
the finished run a DAG callback's context shows."""

from __future__ import annotations

import datetime

import pytest

from tradewind.sdk.assets import Asset, AssetAlias
from tradewind.sdk.dag import DAG
from tradewind.sdk.execution import run_dag_callback
from tradewind.sdk.operators.empty import EmptyOperator
from tradewind.sdk.operators.python import PythonOperator

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
ORDERS = Asset(name="orders", uri="s3://bucket/orders")


def make_dag(**kwargs) -> DAG:
    return DAG("test_dag", schedule="@daily", start_date=START, **kwargs)


def test_inlet_events_for_asset_by_name_uri_or_both_and_for_asset_alias(client, run):
    client.asset_events[("uri", ORDERS.uri)] = [{"uri": ORDERS.uri, "extra": {"n": 1}}]
    client.asset_events[("alias", "nightly")] = [{"uri": "s3://bucket/x", "extra": {"n": 2}}]
    seen = {}

    def read(inlet_events):
        by_uri = inlet_events.for_asset(uri=ORDERS.uri)
        seen["same accessor"] = {
            inlet_events.for_asset(name="orders") is by_uri,
            inlet_events.for_asset(name="orders", uri=ORDERS.uri) is by_uri,
            inlet_events[ORDERS] is by_uri,
        }
        seen["extras"] = [event.extra["n"] for event in by_uri]
        seen["alias"] = [event.extra["n"] for event in inlet_events.for_asset_alias(name="nightly")]
        with pytest.raises(KeyError):
            inlet_events.for_asset(name="not an inlet")
        with pytest.raises(KeyError):
            inlet_events.for_asset_alias(name="orders")  # an asset's name is no alias
        with pytest.raises(ValueError, match="name and uri cannot both be None"):
            inlet_events.for_asset()

    with make_dag() as dag:
        PythonOperator(task_id="task", python_callable=read, inlets=[ORDERS, AssetAlias("nightly")])
    outcome = run(dag, "task")
    assert outcome["state"] == "success", outcome["traceback"]
    assert seen == {"same accessor": {True}, "extras": [1], "alias": [2]}


def test_outlet_events_for_asset_is_the_outlets_accessor_and_records_its_extra(client, run):
    def produce(outlet_events):
        outlet_events.for_asset(name="orders").extra["by_name"] = 1
        outlet_events.for_asset(uri=ORDERS.uri).extra["by_uri"] = 2
        outlet_events.for_asset(name="orders", uri=ORDERS.uri).extra["by_both"] = 3
        assert outlet_events.for_asset(name="orders") is outlet_events[ORDERS]
        outlet_events.for_asset_alias(name="dynamic").add(Asset("s3://bucket/d"), extra={"via": "alias"})
        outlet_events.for_asset(name="not an outlet").extra["ignored"] = True

    with make_dag() as dag:
        PythonOperator(task_id="task", python_callable=produce, outlets=[ORDERS, AssetAlias("dynamic")])
    outcome = run(dag, "task")
    assert outcome["state"] == "success", outcome["traceback"]
    assert outcome["asset_events"] == [
        {"uri": ORDERS.uri, "name": "orders", "extra": {"by_name": 1, "by_uri": 2, "by_both": 3}},
        {"uri": "s3://bucket/d", "name": "s3://bucket/d", "extra": {"via": "alias"}, "alias": "dynamic"},
    ]


def test_triggering_asset_events_for_asset_and_for_asset_alias(client, run):
    def event(uri: str, name: str, n: int, aliases: list[str]) -> dict:
        # the shape of AssetEvent.for_task(), which the runner sends
        return {
            "uri": uri,
            "asset": {"uri": uri, "name": name, "group": "asset"},
            "extra": {"n": n},
            "timestamp": f"2024-01-0{n}T00:00:00+00:00",
            "source_aliases": aliases,
        }

    events = [
        event(ORDERS.uri, "orders", 1, []),
        event("s3://bucket/d", "d", 2, ["nightly"]),
        event(ORDERS.uri, "orders", 3, ["nightly"]),
    ]
    seen = {}

    def read(triggering_asset_events):
        def extras(found):
            return [e.extra["n"] for e in found]

        seen["by name"] = extras(triggering_asset_events.for_asset(name="orders"))
        seen["by uri"] = extras(triggering_asset_events.for_asset(uri=ORDERS.uri))
        seen["by both"] = extras(triggering_asset_events.for_asset(name="orders", uri=ORDERS.uri))
        seen["by asset"] = extras(triggering_asset_events[ORDERS])
        seen["by uri string"] = extras(triggering_asset_events[ORDERS.uri])
        seen["by alias"] = extras(triggering_asset_events.for_asset_alias(name="nightly"))
        seen["keys"] = list(triggering_asset_events)
        # Airflow 3's keys have .name and .uri; Airflow 2's were the URI strings: a key is both.
        seen["key names"] = [(key.name, key.uri) for key in triggering_asset_events]
        for missing in (
            lambda: triggering_asset_events.for_asset(name="other"),
            lambda: triggering_asset_events.for_asset_alias(name="orders"),
        ):
            with pytest.raises(KeyError):
                missing()

    with make_dag() as dag:
        PythonOperator(task_id="task", python_callable=read)
    outcome = run(dag, "task", run_type="asset_triggered", triggering_asset_events=events)
    assert outcome["state"] == "success", outcome["traceback"]
    assert seen == {
        "by name": [1, 3],
        "by uri": [1, 3],
        "by both": [1, 3],
        "by asset": [1, 3],
        "by uri string": [1, 3],
        "by alias": [2, 3],  # in the order the events came
        "keys": [ORDERS.uri, "s3://bucket/d"],
        "key names": [("orders", ORDERS.uri), ("d", "s3://bucket/d")],
    }


@pytest.mark.parametrize(("kind", "state"), [("success", "success"), ("failure", "failed")])
def test_a_dag_callbacks_dag_run_is_the_finished_run(client, ti_info, kind, state):
    seen = {}

    def callback(context):
        dag_run = context["dag_run"]
        seen.update(state=dag_run.state, get_state=dag_run.get_state(), end_date=dag_run.end_date)

    with make_dag(**{f"on_{kind}_callback": callback}) as dag:
        EmptyOperator(task_id="last")
    info = {**ti_info(task_id="last"), "run_state": state, "end_date": "2024-01-03T00:05:00+00:00"}
    assert run_dag_callback(dag, kind, info)["error"] is None
    assert seen == {
        "state": state,
        "get_state": state,
        "end_date": datetime.datetime(2024, 1, 3, 0, 5, tzinfo=datetime.UTC),
    }
