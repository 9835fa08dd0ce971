"""An Airflow 3 asset-scheduled DAG reading the events that triggered it."""

from airflow.sdk import Asset, dag, task

ORDERS = Asset("s3://warehouse/orders")


@dag(schedule=[ORDERS], catchup=False)
def consume_orders():
    @task
    def summarize(*, triggering_asset_events=None) -> dict:
        events = triggering_asset_events[ORDERS]
        return {"events": len(events), "total": events[0].extra["total"]}

    summarize()


consume_orders()
