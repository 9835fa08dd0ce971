"""@asset and @asset.multi functions: each parameter gets the stored asset of its name, a default its default,
self the definition; a parameter naming no asset fails the task as in Airflow."""

from airflow.sdk import Asset, asset


@asset(schedule=None, uri="s3://lake/raw.csv", extra={"owner": "ingest"})
def raw_data():
    return "raw"


@asset(schedule=raw_data)
def cleaned(self, context, raw_data, limit=3):
    assert (self.name, self.uri) == ("cleaned", "cleaned")
    assert (raw_data.name, raw_data.uri, raw_data.extra) == (
        "raw_data",
        "s3://lake/raw.csv",
        {"owner": "ingest"},
    )
    assert limit == 3
    assert [ref.name for ref in context["task"].inlets] == ["raw_data"]  # limit has a default: no inlet


@asset.multi(outlets=[Asset("part_a"), Asset("part_b", extra={"n": 2})], schedule=None)
def parts(self, cleaned):
    assert cleaned.name == "cleaned"
    assert sorted(a.name for a in self.iter_assets()) == ["part_a", "part_b"]


@asset(schedule=parts)
def combined():
    pass


@asset(schedule=None)
def unknown_input(no_such_asset):
    pass
