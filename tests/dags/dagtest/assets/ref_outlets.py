"""Asset.ref outlets: an event is recorded for the stored asset a ref names (by name or by URI), with the
extra set through outlet_events; a ref to no stored asset records nothing, as in Airflow."""

import pendulum
from airflow.sdk import DAG, Asset, task

DECLARED = [Asset(name="orders", uri="s3://lake/orders"), Asset(name="items", uri="s3://lake/items")]

with DAG("declares_orders", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):

    @task(outlets=DECLARED)
    def declare():
        pass

    declare()

with DAG("ref_outlets", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):

    @task(outlets=[Asset.ref(name="orders"), Asset.ref(uri="s3://lake/items"), Asset.ref(name="nowhere")])
    def produce(*, outlet_events):
        outlet_events[Asset.ref(name="orders")].extra = {"rows": 7}

    @task(inlets=[Asset.ref(name="orders"), Asset.ref(name="items"), Asset.ref(name="nowhere")])
    def read(*, inlet_events):
        for name, uri, extras in (
            ("orders", "s3://lake/orders", [{"rows": 7}]),
            ("items", "s3://lake/items", [{}]),
        ):
            mine = [e for e in inlet_events[Asset.ref(name=name)] if e.source_dag_id == "ref_outlets"]
            assert [(e.asset.uri, e.extra) for e in mine] == [(uri, extra) for extra in extras], mine
        assert len(inlet_events[Asset.ref(name="nowhere")]) == 0

    produce() >> read()
