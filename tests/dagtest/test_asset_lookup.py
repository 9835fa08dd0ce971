"""`dags test` of a DAG using Airflow 3.1's for_asset / for_asset_alias on outlet_events and inlet_events,
in tasks and in a classic operator's template: every task runs for real in the sandbox and succeeds."""

from __future__ import annotations

import pytest

from scheduler import dagtest
from tests.dagtest.conftest import DAGS

pytestmark = pytest.mark.django_db(transaction=True)


def test_for_asset_and_for_asset_alias():
    report = dagtest.run_dags_test(path=DAGS / "asset_lookup")

    assert [f"{problem.task}: {problem.error}" for problem in report.task_problems] == []
    (run,) = report.document["dags"]
    assert (run["dag_id"], run["state"]) == ("for_asset", "success")
    assert run["tasks"] == {
        "by_name": "success",
        "by_uri": "success",
        "by_both": "success",
        "through_alias": "success",
        "read": "success",
        "read_from_classic": "success",
        "check_classic": "success",
    }
    assert report.succeeded
