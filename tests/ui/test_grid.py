"""The DAG page's grid: rows in task-group order with upstream tasks first, mapped tasks and groups summarised."""

from __future__ import annotations

from frontend.grid import TIRow, build_grid, summary_state
from tests.ui.conftest import grouped_dag
from tradewind.sdk import DAG, TaskGroup
from tradewind.sdk.operators.empty import EmptyOperator
from tradewind.sdk.serialization import serialize_dag


def rows_of(serialized: dict, run_pks: list[int], tis: list[TIRow]) -> list[tuple[str, int, bool, list]]:
    return [
        (row.key, row.depth, row.is_group, [(c.state, c.count) for c in row.cells])
        for row in build_grid(serialized, run_pks, tis)
    ]


def test_rows_follow_groups_and_dependencies():
    with DAG("nested", schedule=None) as dag:
        last = EmptyOperator(task_id="a_last")
        with TaskGroup("outer") as outer:
            first_inside = EmptyOperator(task_id="z_first")
            with TaskGroup("inner") as inner:
                EmptyOperator(task_id="deep")
            first_inside >> inner
        root = EmptyOperator(task_id="root")
        root >> outer >> last
    rows = [(row.key, row.depth, row.is_group) for row in build_grid(serialize_dag(dag), [], [])]
    assert rows == [
        ("root", 0, False),
        ("outer", 0, True),
        ("outer.z_first", 1, False),
        ("outer.inner", 1, True),
        ("outer.inner.deep", 2, False),
        ("a_last", 0, False),
    ]


def test_cells_per_run_with_mapped_tasks_and_groups_summarised():
    serialized = serialize_dag(grouped_dag("etl"))
    tis = [
        TIRow(1, "start", -1, "success", 1),
        TIRow(1, "grp.inner", -1, "failed", 1),
        TIRow(1, "fan", 0, "success", 1),
        TIRow(1, "fan", 1, "running", 1),
        TIRow(1, "fan", 2, "success", 1),
        TIRow(1, "end", -1, "none", 0),
        TIRow(2, "start", -1, "running", 1),
        TIRow(2, "grp.inner", -1, "none", 0),
        TIRow(2, "fan", -1, "none", 0),  # not expanded yet: its placeholder stands alone
    ]
    assert rows_of(serialized, [1, 2], tis) == [
        ("start", 0, False, [("success", 1), ("running", 1)]),
        ("grp", 0, True, [("failed", 1), ("none", 1)]),
        ("grp.inner", 1, False, [("failed", 1), ("none", 1)]),
        ("fan", 0, False, [("running", 3), ("none", 1)]),
        ("end", 0, False, [("none", 1), (None, 0)]),
    ]
    fan = build_grid(serialized, [1], tis)[3].cells[0]
    assert fan.title == "1 running, 2 success"


def test_summary_shows_trouble_first_then_progress_then_done():
    assert summary_state(["success", "failed", "running"]) == "failed"
    assert summary_state(["success", "running"]) == "running"
    assert summary_state(["success", "none"]) == "none"
    assert summary_state(["success", "skipped"]) == "success"
    assert summary_state([]) is None
