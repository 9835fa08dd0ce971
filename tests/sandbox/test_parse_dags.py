"""Good DAG files parse to serialized DAGs in the sandbox, with the SDK and the Airflow compatibility layer."""

from __future__ import annotations

from workers.sandbox import parse_files

from .conftest import DAGS, FakePlatform

TENANT = 19


def test_airflow2_and_airflow3_files_parse_to_serialized_dags():
    results = parse_files(DAGS, ["good_airflow2.py", "good_airflow3.py", "plain_module.py"], tenant_id=TENANT)
    assert all(r["error"] is None for r in results.values()), results
    dags = {d["dag_id"]: d for r in results.values() for d in r["dags"]}
    assert set(dags) == {"sandbox_good_classic", "sandbox_good_decorated", "sandbox_good_sdk"}
    classic = dags["sandbox_good_classic"]
    assert classic["fileloc"] == "good_airflow2.py"
    tasks = {t["task_id"]: t for t in classic["tasks"]}
    assert set(tasks) == {"start", "extract.pull", "end"}
    assert tasks["extract.pull"]["upstream_task_ids"] == ["start"]
    assert tasks["end"]["upstream_task_ids"] == ["extract.pull"]
    assert {t["task_id"] for t in dags["sandbox_good_decorated"]["tasks"]} == {"numbers", "total"}


def test_a_variable_read_at_parse_time_is_answered_by_the_handler():
    platform = FakePlatform({"team_name": "finance"})
    handler = platform.handler_for({"run_id": "", "task_id": "", "map_index": -1})
    result = parse_files(DAGS, ["uses_variable_at_parse.py"], tenant_id=TENANT, handler=handler)
    assert [d["dag_id"] for d in result["uses_variable_at_parse.py"]["dags"]] == ["owned_by_finance"]
    assert ("get_variable", {"key": "team_name"}) in platform.calls


def test_without_a_handler_a_variable_read_at_parse_time_is_a_clear_error():
    error = parse_files(DAGS, ["uses_variable_at_parse.py"], tenant_id=TENANT)["uses_variable_at_parse.py"][
        "error"
    ]
    assert error.startswith("RuntimeError while importing uses_variable_at_parse.py: ")
    assert "get_variable is not available here (no RPC handler)" in error
    assert 'File "uses_variable_at_parse.py", line 9' in error
