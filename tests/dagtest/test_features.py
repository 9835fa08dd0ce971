"""Airflow 3 style DAG files (airflow.sdk, airflow.providers.standard) and sensors through `dags test --json`:
TaskFlow with multiple_outputs, mapping over upstream XCom, setup/teardown, trigger rules, failures that do
not retry, skips, execution_timeout, and sensors in poke, reschedule and deferrable form."""

from __future__ import annotations

import json
import time

import pytest

from scheduler import dagtest
from scheduler.models import Asset
from tests.dagtest.conftest import DAGS

pytestmark = pytest.mark.django_db(transaction=True)


def test_features_folder(dags, out_dir):
    began = time.monotonic()
    result = dags("test", str(DAGS / "features"), "--json", "--conf", json.dumps({"out_dir": str(out_dir)}))
    elapsed = time.monotonic() - began
    document = result.document
    assert document["import_errors"] == {}
    runs = {entry["dag_id"]: entry for entry in document["dags"]}
    assert sorted(runs) == [
        "fail_fast",
        "sensors",
        "setup_teardown",
        "skipping",
        "taskflow_mapping",
        "timeouts",
        "trigger_rules",
    ]
    # Some DAGs fail on purpose: the exit status says not every run succeeded.
    assert result.exit_code == 1

    # TaskFlow: multiple_outputs keys feed a mapped task (partial + expand) and a plain argument; a second
    # mapped task expands over a whole upstream return value; a reduce task gets the mapped results.
    taskflow = runs["taskflow_mapping"]
    assert taskflow["tasks"] == {
        "split": "success",
        "times[0]": "success",
        "times[1]": "success",
        "times[2]": "success",
        "total": "success",
        "make_words": "success",
        "length[0]": "success",
        "length[1]": "success",
        "length[2]": "success",
        "check": "success",
    }
    assert taskflow["state"] == "success"

    # Setup/teardown: the work fails, the teardown still runs, and the run fails (teardowns do not mask it).
    assert runs["setup_teardown"]["tasks"] == {
        "create_cluster": "success",
        "work": "failed",
        "after_work": "upstream_failed",
        "delete_cluster": "success",
    }
    assert runs["setup_teardown"]["state"] == "failed"

    # Trigger rules downstream of one failed and one successful task.
    assert runs["trigger_rules"]["tasks"] == {
        "failing": "failed",
        "fine": "success",
        "all_success": "upstream_failed",
        "all_done": "success",
        "one_failed": "success",
        "one_success": "success",
        "all_failed": "skipped",
        "none_failed": "upstream_failed",
        "always": "success",
    }
    assert runs["trigger_rules"]["state"] == "failed"

    # AirflowFailException: failed at once although retries were left.
    assert runs["fail_fast"]["tasks"] == {"give_up": "failed", "never": "upstream_failed"}
    assert (out_dir / "fail_fast_tries.txt").read_text() == "try 1\n"

    # AirflowSkipException: skipped, and the skip propagates; none_failed still runs; the run succeeds.
    assert runs["skipping"]["state"] == "success"
    assert runs["skipping"]["tasks"] == {
        "nothing_to_do": "skipped",
        "downstream": "skipped",
        "report": "success",
    }

    # execution_timeout of 1 s on a task sleeping 60 s.
    assert runs["timeouts"]["tasks"] == {"too_slow": "failed"} and runs["timeouts"]["state"] == "failed"
    assert elapsed < 60

    # Sensors: poke mode, reschedule mode (the run waits for the reschedule date), deferrable sensors with
    # both import paths (their triggers run inline), a bash sensor, soft_fail turning a timeout into a skip.
    assert runs["sensors"]["tasks"] == {
        "poke": "success",
        "reschedule": "success",
        "deferred_af2": "success",
        "deferred_af3": "success",
        "make_file": "success",
        "file_there": "success",
        "soft_fail": "skipped",
        "done": "success",
    }
    assert runs["sensors"]["state"] == "success"


def test_asset_functions_and_ref_outlets_find_the_stored_assets(other_tenant):
    # Another tenant's asset of the name a parameter asks for stays invisible.
    Asset.objects.create(tenant=other_tenant, uri="s3://theirs", name="no_such_asset")
    report = dagtest.run_dags_test(path=DAGS / "assets")
    runs = {entry["dag_id"]: entry["state"] for entry in report.document["dags"]}
    # The functions assert what they get (see the file): the stored asset with its URI and extra, defaults,
    # self; @asset.multi makes one DAG producing both outlets, and a DAG scheduled on it. ref_outlets checks
    # the events Asset.ref outlets record.
    assert runs == {
        "raw_data": "success",
        "cleaned": "success",
        "parts": "success",
        "combined": "success",
        "unknown_input": "failed",
        "declares_orders": "success",
        "ref_outlets": "success",
    }
    problems = {f"{p.dag_id}.{p.task}": p.error for p in report.task_problems}
    assert problems == {
        "unknown_input.__main__": "AirflowRuntimeError: Asset with name 'no_such_asset' not found"
    }
