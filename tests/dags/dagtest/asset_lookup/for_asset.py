"""for_asset / for_asset_alias (Airflow 3.1): tasks set outlet extras through outlet_events.for_asset by name,
by URI and by both and add events through outlet_events.for_asset_alias; a later task reads them through
inlet_events.for_asset and for_asset_alias, and a classic operator in a template, as Airflow's
example_inlet_event_extra.py does."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import Asset, AssetAlias, dag, task

output = Asset(uri="s3://output/1.txt", name="test-asset")
alias = AssetAlias("dynamic")


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def for_asset():
    @task(outlets=[output])
    def by_name(*, outlet_events=None):
        outlet_events.for_asset(name="test-asset").extra = {"hi": "by name"}

    @task(outlets=[output])
    def by_uri(*, outlet_events=None):
        outlet_events.for_asset(uri="s3://output/1.txt").extra = {"hi": "by uri"}

    @task(outlets=[output])
    def by_both(*, outlet_events=None):
        outlet_events.for_asset(name="test-asset", uri="s3://output/1.txt").extra = {"hi": "bye"}

    @task(outlets=[alias])
    def through_alias(*, outlet_events=None):
        outlet_events.for_asset_alias(name="dynamic").add(Asset("s3://output/2.txt"), extra={"hi": "alias"})

    @task(inlets=[output, alias])
    def read(*, inlet_events=None):
        extras = [event.extra["hi"] for event in inlet_events.for_asset(name="test-asset")]
        assert extras == ["by name", "by uri", "bye"], extras
        assert inlet_events.for_asset(uri="s3://output/1.txt")[-1].extra == {"hi": "bye"}
        (aliased,) = inlet_events.for_asset_alias(name="dynamic")
        assert (aliased.uri, aliased.extra) == ("s3://output/2.txt", {"hi": "alias"})

    classic = BashOperator(
        task_id="read_from_classic",
        inlets=[output],
        bash_command="echo '{{ inlet_events.for_asset(uri='s3://output/1.txt')[-1].extra | tojson }}'",
    )

    @task
    def check_classic(*, ti=None):
        echoed = ti.xcom_pull(task_ids="read_from_classic")
        assert echoed == '{"hi": "bye"}', echoed

    by_name() >> by_uri() >> by_both() >> through_alias() >> read() >> classic >> check_classic()


for_asset()
