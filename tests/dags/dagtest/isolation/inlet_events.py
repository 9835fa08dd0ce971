"""inlet_events: a task reads the events its inlets got earlier in the run (extras, sources, through an
alias, through an Asset.ref by name), never another tenant's events of the same URI; an extra JSON cannot
hold fails its task clearly."""

from datetime import datetime

from airflow.sdk import Asset, AssetAlias, Metadata, dag, task

orders = Asset("s3://shared/orders")  # another tenant has events of this URI too
alias = AssetAlias("nightly")
named = Asset(uri="s3://shared/named", name="named_asset")


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def inlet_events():
    @task(outlets=[orders])
    def count(**context):
        context["outlet_events"][orders].extra = {"rows": 1}

    @task(outlets=[orders])
    def stamp():
        yield Metadata(orders, {"rows": 2, "at": datetime(2024, 5, 6, 7, 8)})

    @task(outlets=[alias])
    def through_alias(**context):
        context["outlet_events"][alias].add(Asset("s3://shared/aliased"), extra={"via": "alias"})

    @task(outlets=[named])
    def to_named():
        pass

    @task(outlets=[orders])
    def unstorable(**context):
        context["outlet_events"][orders].extra = {"handle": object()}

    @task(
        inlets=[orders, alias, Asset.ref(name="named_asset")], trigger_rule="all_done"
    )  # after `unstorable` failed, without its event
    def read(**context):
        events = context["inlet_events"][orders]
        assert [event.extra for event in events] == [{"rows": 1}, {"rows": 2, "at": "2024-05-06T07:08:00"}]
        latest = events[-1]
        assert (latest.source_dag_id, latest.source_task_id, latest.asset.uri) == (
            "inlet_events",
            "stamp",
            "s3://shared/orders",
        )
        assert latest.timestamp > events[0].timestamp and latest.source_run_id == context["run_id"]
        assert [e.extra for e in context["inlet_events"]["s3://shared/orders"][:1]] == [{"rows": 1}]
        (aliased,) = context["inlet_events"][1]
        assert (aliased.uri, aliased.extra, aliased.source_aliases) == (
            "s3://shared/aliased",
            {"via": "alias"},
            ["nightly"],
        )
        (by_name,) = context["inlet_events"][Asset.ref(name="named_asset")]
        assert by_name.asset.uri == named.uri and context["inlet_events"][named][0].id == by_name.id
        try:
            context["inlet_events"][Asset("s3://not/an/inlet")]
        except KeyError:
            return "read"
        raise AssertionError("an asset that is not an inlet has no events to read")

    count() >> stamp() >> through_alias() >> to_named() >> unstorable() >> read()


inlet_events()
