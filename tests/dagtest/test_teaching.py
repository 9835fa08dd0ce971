"""The pipelines in Airflow's usual teaching form (Airflow 2 import paths), run through `dags test --json`."""

from __future__ import annotations

import json

import pytest

from tests.dagtest.conftest import DAGS

pytestmark = pytest.mark.django_db(transaction=True)


def test_teaching_pipelines_all_succeed_with_the_expected_task_states(dags, out_dir):
    result = dags(
        "test",
        str(DAGS / "teaching"),
        "--json",
        "--logical-date",
        "2024-03-15",
        "--conf",
        json.dumps({"out_dir": str(out_dir)}),
    )
    document = result.document
    assert document["import_errors"] == {}
    runs = {entry["dag_id"]: entry for entry in document["dags"]}
    assert sorted(runs) == [
        "branching",
        "etl_retries",
        "generated_alpha",
        "generated_beta",
        "generated_gamma",
        "groups_fanout",
        "xcom_jinja",
    ]
    assert {dag_id: entry["state"] for dag_id, entry in runs.items()} == dict.fromkeys(runs, "success"), (
        result.stderr
    )
    assert all(entry["run_id"] for entry in runs.values())

    # ETL chain: transform failed once and succeeded on its retry (asserted inside `check` via XCom).
    assert runs["etl_retries"]["tasks"] == dict.fromkeys(["extract", "transform", "load", "check"], "success")
    # Loop-generated DAGs registered through globals().
    for source in ("alpha", "beta", "gamma"):
        assert runs[f"generated_{source}"]["tasks"] == {"start": "success", f"pull_{source}": "success"}
    # Fan-out/fan-in with lists, nested groups (ids prefixed by their group), cross_downstream and chain.
    assert runs["groups_fanout"]["tasks"] == dict.fromkeys(
        [
            "start",
            "fan.square_1",
            "fan.square_2",
            "fan.square_3",
            "join",
            "quality.inner.first",
            "quality.inner.second",
            "quality.last",
            "x1",
            "x2",
            "y1",
            "y2",
        ],
        "success",
    )
    # Branching: the branch not taken is skipped, the join still runs; a short circuit skips what follows.
    assert runs["branching"]["tasks"] == {
        "choose": "success",
        "fast_path": "success",
        "slow_path": "skipped",
        "after_slow": "skipped",
        "join": "success",
        "gate": "success",
        "gated": "skipped",
        "after_gated": "skipped",
    }
    # XCom push/pull and Jinja: the templates rendered from the logical date, macros and params.
    assert runs["xcom_jinja"]["tasks"] == dict.fromkeys(
        ["push", "templated_kwargs", "pull", "render"], "success"
    )
    assert (out_dir / "rendered.txt").read_text().strip() == (
        "2024-03-15 20240315 2024-03-18 hellox3 xcom_jinja render"
    )
    assert result.exit_code == 0
