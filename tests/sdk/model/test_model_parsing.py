"""Parsing DAG files (globals, auto-registration, errors), serializing them deterministically, and speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tradewind.sdk.exceptions import AirflowDagCycleException, DuplicateTaskIdFound, ParamValidationError
from tradewind.sdk.parsing import import_dag_file, might_contain_dag
from tradewind.sdk.serialization import dag_hash, serialize_dag

REPO = Path(__file__).resolve().parents[3]
DAGS = REPO / "tests" / "dags" / "model"
COMPAT = REPO / "workers" / "compat"


def test_dags_published_through_globals_in_a_loop():
    dags = import_dag_file(str(DAGS / "globals_loop.py"))
    assert sorted(d.dag_id for d in dags) == ["loop_alpha", "loop_beta", "loop_gamma"]
    assert all(d.fileloc == str(DAGS / "globals_loop.py") for d in dags)


def test_auto_registered_dags_are_found_without_a_global_name():
    dags = import_dag_file(str(DAGS / "registered.py"), root=str(REPO))
    assert sorted(d.dag_id for d in dags) == ["context_only", "decorated", "from_helper"]
    assert {d.relative_fileloc for d in dags} == {"tests/dags/model/registered.py"}
    decorated = next(d for d in dags if d.dag_id == "decorated")
    assert decorated.params["limit"] == 5


def test_import_errors_propagate_unchanged(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("from tradewind.sdk import DAG\ndef broken(:\n")
    with pytest.raises(SyntaxError):
        import_dag_file(str(broken))
    missing = tmp_path / "missing.py"
    missing.write_text("import a_module_that_does_not_exist\n")
    with pytest.raises(ModuleNotFoundError):
        import_dag_file(str(missing))


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("cycle.py", AirflowDagCycleException, "Cycle detected in DAG: cyclic"),
        ("duplicate_task.py", DuplicateTaskIdFound, "Task id 'same' has already been added"),
        ("bad_param_default.py", ParamValidationError, "Invalid input for param n"),
    ],
)
def test_invalid_dags_raise(name, error, message):
    with pytest.raises(error, match=message):
        import_dag_file(str(DAGS / name))


def test_a_failed_import_leaves_no_state_behind(tmp_path):
    failing = tmp_path / "half.py"
    failing.write_text(
        "from datetime import datetime\nfrom tradewind.sdk import DAG, TaskGroup\n"
        "with DAG('half', start_date=datetime(2024, 1, 1)):\n    with TaskGroup('g'):\n        raise RuntimeError('x')\n"
    )
    with pytest.raises(RuntimeError):
        import_dag_file(str(failing))
    dags = import_dag_file(str(DAGS / "globals_loop.py"))
    assert all(task.task_group.is_root for dag in dags for task in dag.tasks)


def test_taskflow_file_serializes_everything_the_scheduler_needs():
    (dag,) = import_dag_file(str(DAGS / "taskflow.py"), root=str(REPO))
    data = serialize_dag(dag)
    json.dumps(data)  # JSON-able
    assert data["dag_id"] == "taskflow_etl" and data["fileloc"] == "tests/dags/model/taskflow.py"
    assert data["schedule"]["type"] == "cron_trigger" and data["catchup"] is False
    assert data["tags"] == ["daily", "etl", "example"]
    assert data["params"]["threshold"]["schema"] == {"type": "integer", "minimum": 0}
    tasks = {t["task_id"]: t for t in data["tasks"]}
    assert set(tasks) == {"extract", "square", "total", "report.echo", "announce"}
    assert tasks["square"]["is_mapped"] and tasks["square"]["upstream_task_ids"] == ["extract"]
    assert tasks["total"]["retries"] == 2 and tasks["total"]["retry_delay"] == 60.0
    assert tasks["report.echo"]["group_id"] == "report"
    assert {"from": "report.echo", "to": "announce", "label": "then"} in data["edges"]
    assert data["task_groups"]["groups"][0]["group_id"] == "report"


def _serialize_in_subprocess(path: Path, seed: str) -> str:
    code = textwrap.dedent(
        f"""
        from tradewind.sdk.parsing import import_dag_file
        from tradewind.sdk.serialization import canonical_json, serialize_dag
        print(canonical_json([serialize_dag(d) for d in import_dag_file({str(path)!r})]))
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout


def test_serialization_is_deterministic_across_processes_and_hash_seeds():
    path = DAGS / "hash_seed_sensitive.py"
    outputs = {_serialize_in_subprocess(path, seed) for seed in ("1", "2", "3")}
    assert len(outputs) == 1
    (data,) = json.loads(outputs.pop())
    assert [t["task_id"] for t in data["tasks"]] == [
        "alpha",
        "bravo",
        "charlie",
        "delta",
        "echo",
        "foxtrot",
        "root",
    ]
    assert data["tasks"][0]["email"] == ["a@x", "b@x"]


def test_dag_hash_changes_with_the_dag():
    (first,) = import_dag_file(str(DAGS / "hash_seed_sensitive.py"))
    before = dag_hash(serialize_dag(first))
    assert before == dag_hash(serialize_dag(first))
    first.get_task("root").retries = 7
    assert dag_hash(serialize_dag(first)) != before


def _parse_with_compat(path: Path) -> list[dict]:
    code = textwrap.dedent(
        f"""
        import json
        from tradewind.sdk.parsing import import_dag_file
        from tradewind.sdk.serialization import serialize_dag
        print(json.dumps([serialize_dag(d) for d in import_dag_file({str(path)!r})]))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(COMPAT), str(REPO)])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_airflow2_file_parses_with_airflow2_semantics():
    (data,) = _parse_with_compat(DAGS / "airflow2_style.py")
    assert data["airflow_version"] == 2 and data["catchup"] is True
    assert data["schedule"] == {
        "type": "cron_data_interval",
        "expression": "0 0 * * *",
        "timezone": "UTC",
        "summary": "@daily",
    }
    tasks = {t["task_id"]: t for t in data["tasks"]}
    assert set(tasks) == {"start", "extract", "transform", "load_group.load", "end"}
    assert tasks["transform"]["upstream_task_ids"] == ["extract"]
    assert tasks["load_group.load"]["upstream_task_ids"] == ["transform"]
    assert tasks["end"]["upstream_task_ids"] == ["load_group.load"]
    assert tasks["load_group.load"]["outlets"][0]["uri"] == "s3://bucket/table"
    assert tasks["extract"]["owner"] == "data" and tasks["extract"]["retry_delay"] == 300.0


def test_airflow3_file_parses_with_airflow3_semantics():
    (data,) = _parse_with_compat(DAGS / "airflow3_style.py")
    assert data["airflow_version"] == 3 and data["catchup"] is False
    assert data["schedule"]["type"] == "cron_trigger" and data["schedule"]["timezone"] == "Europe/Berlin"
    tasks = {t["task_id"]: t for t in data["tasks"]}
    assert tasks["produce"]["upstream_task_ids"] == ["begin"]
    assert tasks["produce"]["outlets"][0]["uri"] == "s3://bucket/out"


def test_might_contain_dag(tmp_path):
    plain = tmp_path / "util.py"
    plain.write_text("def helper():\n    return 1\n")
    assert might_contain_dag(str(DAGS / "taskflow.py")) and not might_contain_dag(str(plain))


def test_parse_and_serialize_speed_sanity(tmp_path):
    body = [
        "from datetime import datetime",
        "from tradewind.sdk import DAG",
        "from tradewind.sdk.operators.bash import BashOperator",
    ]
    body.append(
        "with DAG('speed', start_date=datetime(2024, 1, 1), schedule='@daily', default_args={'retries': 1}):"
    )
    body.append("    previous = None")
    body.append("    for i in range(20):")
    body.append("        task = BashOperator(task_id=f't{i}', bash_command='echo {{ ds }}')")
    body.append("        if previous is not None:")
    body.append("            previous >> task")
    body.append("        previous = task")
    path = tmp_path / "speed.py"
    path.write_text("\n".join(body) + "\n")
    import_dag_file(str(path))  # warm imports
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        (dag,) = import_dag_file(str(path))
        dag_hash(serialize_dag(dag))
    per_file = (time.perf_counter() - started) / rounds
    print(f"import+serialize of a 20-task DAG file: {per_file * 1000:.2f} ms")
    assert len(dag.tasks) == 20
    assert per_file < 0.1  # the budget is ~7 ms per file; this only catches gross regressions


def test_task_kinds_and_sensor_fields_are_serialized():
    from datetime import datetime, timedelta

    from tradewind.sdk import DAG, task
    from tradewind.sdk.operators.empty import EmptyOperator
    from tradewind.sdk.operators.python import BranchPythonOperator, ShortCircuitOperator
    from tradewind.sdk.sensors.python import PythonSensor

    with DAG("kinds", start_date=datetime(2024, 1, 1), schedule=None) as dag:
        BranchPythonOperator(task_id="branch", python_callable=lambda: "empty")
        ShortCircuitOperator(task_id="short", python_callable=lambda: True)
        EmptyOperator(task_id="empty")
        PythonSensor(
            task_id="sensor",
            python_callable=lambda: True,
            mode="reschedule",
            poke_interval=30,
            timeout=timedelta(minutes=10),
        )
        PythonSensor.partial(task_id="mapped_sensor", poke_interval=7).expand(python_callable=[lambda: True])

        @task.branch
        def decorated_branch():
            return "empty"

        decorated_branch()
    tasks = {t["task_id"]: t for t in serialize_dag(dag)["tasks"]}
    assert tasks["branch"]["kind"] == tasks["decorated_branch"]["kind"] == "branch"
    assert tasks["short"]["kind"] == "short_circuit" and tasks["empty"]["kind"] is None
    assert tasks["empty"]["is_empty"] and not tasks["branch"]["is_empty"]
    assert tasks["sensor"]["sensor"]["mode"] == "reschedule"
    assert (tasks["sensor"]["sensor"]["poke_interval"], tasks["sensor"]["sensor"]["timeout"]) == (30.0, 600.0)
    mapped = tasks["mapped_sensor"]["sensor"]
    assert mapped["poke_interval"] == 7.0 and mapped["timeout"] is not None  # the class default
    assert tasks["branch"]["sensor"] is None
