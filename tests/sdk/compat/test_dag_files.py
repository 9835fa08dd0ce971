"""Tutorial-style Airflow 2 and Airflow 3 DAG files parse with import_dag_file and run with run_task."""

from __future__ import annotations

import pendulum

from tradewind.sdk.parsing import import_dag_file


def load(dags_dir, name):
    dags = import_dag_file(str(dags_dir / name))
    return {dag.dag_id: dag for dag in dags}


def xcom(client, dag_id, task_id, key="return_value", map_index=-1):
    return client.xcoms[(dag_id, client.run_id, task_id, map_index, key)]


def test_airflow2_tutorial(dags_dir, run, client):
    dag = load(dags_dir, "airflow2_tutorial.py")["tutorial"]
    assert sorted(dag.task_ids) == ["print_date", "sleep", "templated"]
    assert dag.get_task("print_date").downstream_task_ids == {"sleep", "templated"}
    assert dag.get_task("sleep").retries == 3 and dag.get_task("templated").retries == 1
    assert "Task Documentation" in dag.get_task("print_date").doc_md
    for task_id in ("print_date", "sleep", "templated"):
        outcome = run(dag, task_id)
        assert outcome["state"] == "success", outcome["traceback"]
    rendered = run(dag, "templated")["rendered_fields"]["bash_command"]
    assert rendered.count('echo "2024-01-02"') == 5 and 'echo "2024-01-09"' in rendered
    assert xcom(client, "tutorial", "templated") == "2024-01-09"


def test_airflow2_taskflow_tutorial(dags_dir, run, client):
    dag = load(dags_dir, "airflow2_taskflow.py")["tutorial_taskflow_api"]
    assert dag.get_task("load").upstream_task_ids == {"transform"}
    for task_id in ("extract", "transform", "load"):
        outcome = run(dag, task_id)
        assert outcome["state"] == "success", outcome["traceback"]
    assert xcom(client, "tutorial_taskflow_api", "transform", "total_order_value") == 1236.7
    assert xcom(client, "tutorial_taskflow_api", "load") == 1236.7


def test_airflow2_legacy_operators(dags_dir, run, client):
    client.variables["environment"] = "prod"
    dag = load(dags_dir, "airflow2_operators.py")["legacy_operators"]
    assert dag.get_task("work.produce").retries == 2
    assert dag.get_edge_info("branch", "weekday") == {"label": "Mon-Fri"}
    outcomes = {
        task_id: run(dag, task_id)
        for task_id in ("start", "ready", "branch", "weekday", "work.produce", "work.show")
    }
    assert all(o["state"] == "success" for o in outcomes.values()), outcomes
    assert outcomes["branch"]["followed"] == ["weekday"]  # 2024-01-02 is a Tuesday
    assert outcomes["work.produce"]["asset_events"] == [
        {"uri": "s3://reports/daily.csv", "name": "s3://reports/daily.csv", "extra": {}}
    ]
    assert xcom(client, "legacy_operators", "work.show") == "prod-report 5"


def test_airflow3_pipeline_with_mapping_assets_and_params(dags_dir, run, client):
    dag = load(dags_dir, "airflow3_tutorial.py")["modern_pipeline"]
    assert dag.get_task("load").upstream_task_ids == {"regions", "wait"}
    assert run(dag, "wait")["state"] == "success"
    assert run(dag, "regions", conf={"regions": ["emea", "apac", "us"]})["state"] == "success"
    for index in range(3):
        assert run(dag, "load", map_index=index)["state"] == "success"
    assert [xcom(client, "modern_pipeline", "load", map_index=i) for i in range(3)] == [12, 13, 8]
    outcome = run(dag, "publish")
    assert outcome["asset_events"] == [
        {"uri": "s3://warehouse/orders", "name": "s3://warehouse/orders", "extra": {"total": 33}}
    ]
    assert run(dag, "report.stamp")["state"] == "success"
    assert xcom(client, "modern_pipeline", "report.stamp") == "2024-01-02 2"
    bad = run(dag, "regions", conf={"scale": 0})
    assert bad["state"] == "failed" and "ParamValidationError" in bad["error"]


def test_airflow3_asset_triggered_dag(dags_dir, run, client):
    dag = load(dags_dir, "airflow3_asset_consumer.py")["consume_orders"]
    events = {
        "s3://warehouse/orders": [
            {
                "extra": {"total": 33},
                "source_dag_id": "modern_pipeline",
                "timestamp": pendulum.now("UTC").isoformat(),
            }
        ]
    }
    outcome = run(dag, "summarize", run_type="asset_triggered", triggering_asset_events=events)
    assert outcome["state"] == "success", outcome["traceback"]
    assert xcom(client, "consume_orders", "summarize") == {"events": 1, "total": 33}
