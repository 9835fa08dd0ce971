"""Bad DAG files next to a good one: each is an import error with a clear message; the good DAG runs."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

SYNTAX_ERROR = """\
from airflow import DAG

with DAG("syntax_error", schedule=None) as dag
    pass
"""


def test_bad_files_are_import_errors_and_the_good_dag_still_runs(dags, dag_copy, settings):
    settings.TRADEWIND_PARSE_TIMEOUT = 3  # loops_forever.py is killed after this
    folder = dag_copy("bad")
    (folder / "syntax_error.py").write_text(SYNTAX_ERROR)  # written here: a linter cannot parse it
    result = dags("test", str(folder), "--json")
    document = result.document
    errors = document["import_errors"]
    assert sorted(errors) == [
        "custom_timetable.py",
        "cycle.py",
        "duplicate_task.py",
        "exits.py",
        "loops_forever.py",
        "missing_import.py",
        "syntax_error.py",
    ]
    first_lines = {file: message.splitlines()[0] for file, message in errors.items()}
    assert first_lines["syntax_error.py"].startswith("SyntaxError while importing syntax_error.py")
    assert 'File "syntax_error.py", line 3' in errors["syntax_error.py"]
    assert first_lines["missing_import.py"] == (
        "ModuleNotFoundError while importing missing_import.py: No module named 'pandas_but_misspelled'"
    )
    assert first_lines["loops_forever.py"].startswith("timed out after 3 s while importing loops_forever.py")
    assert first_lines["exits.py"] == "sys.exit(3) was called while importing exits.py"
    assert "Cycle detected in DAG: cycle" in first_lines["cycle.py"]
    assert "Task id 'same' has already been added" in first_lines["duplicate_task.py"]
    # Before, the DAG was stored and computing its next run crashed the whole upload.
    assert first_lines["custom_timetable.py"].startswith(
        "SerializationError while serializing DAG 'custom_timetable': timetable class 'EveryDay' is not supported"
    )

    assert document["dags"] == [
        {
            "dag_id": "good",
            "run_id": document["dags"][0]["run_id"],
            "state": "success",
            "tasks": {"compute": "success", "report": "success"},
        }
    ]
    assert result.exit_code == 1  # import errors make `dags test` fail even when every run succeeded

    only_good = dags("test", str(folder), "--json", "--dag-id", "good")
    assert only_good.exit_code == 0  # the DAG asked for ran fine; the other files' errors are still listed
    assert sorted(only_good.document["import_errors"]) == sorted(errors)
