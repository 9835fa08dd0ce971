"""Fixtures for running tasks in-process: an in-memory implementation of the execution Client (the real
parent is the Django platform) and a ti_info builder."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tradewind.sdk.execution import set_client


class InMemoryClient:
    """The Client protocol over plain dicts, recording what a task asked for."""

    def __init__(self) -> None:
        self.dag_id = "test_dag"
        self.run_id = "scheduled__2024-01-02T00:00:00+00:00"
        self.task_id = "task"
        self.map_index = -1
        self.xcoms: dict[tuple[str, str, str, int, str], Any] = {}
        self.variables: dict[str, str] = {}
        self.connections: dict[str, dict] = {}
        self.masked: list[str] = []
        self.triggered: list[dict] = []
        self.dag_run_states: dict[tuple[str, str], list[str]] = {}
        self.task_states: list[dict] = []
        self.dag_runs: list[dict] = []
        self.asset_events: dict[tuple[str, str], list[dict]] = {}  # ("uri" | "alias", name) -> events
        self.asset_event_queries: list[dict] = []

    def for_ti(self, ti_info: dict) -> None:
        self.dag_id = ti_info["dag_id"]
        self.run_id = ti_info["run_id"]
        self.task_id = ti_info["task_id"]
        self.map_index = ti_info.get("map_index", -1)

    def xcom_push(self, *, key: str, value: Any) -> None:
        import json

        json.dumps(value)  # the parent refuses anything that is not JSON
        self.xcoms[(self.dag_id, self.run_id, self.task_id, self.map_index, key)] = value

    def xcom_pull(
        self,
        *,
        dag_id: str,
        run_id: str,
        task_ids: list[str] | None,
        key: str,
        map_indexes: list[int] | None,
        include_prior_dates: bool = False,
    ) -> list[dict]:
        if task_ids is None:  # the task that pushed `key` last (the parent's rule)
            pushed = [t for (d, r, t, _m, k) in self.xcoms if (d, r, k) == (dag_id, run_id, key)]
            task_ids = pushed[-1:]
        rows = []
        for (d, r, t, m, k), value in self.xcoms.items():
            wanted = d == dag_id and r == run_id and t in task_ids and k == key
            if wanted and (map_indexes is None or m in map_indexes):
                rows.append({"task_id": t, "map_index": m, "value": value})
        return rows

    def task_url(self) -> str:
        return f"http://ui.test/dags/{self.dag_id}/runs/{self.run_id}/tasks/{self.task_id}/"

    def push_for(self, task_id: str, value: Any, *, key: str = "return_value", map_index: int = -1) -> None:
        self.xcoms[(self.dag_id, self.run_id, task_id, map_index, key)] = value

    def get_variable(self, key: str) -> str | None:
        return self.variables.get(key)

    def set_variable(self, key: str, value: str) -> None:
        self.variables[key] = value

    def get_connection(self, conn_id: str) -> dict | None:
        return self.connections.get(conn_id)

    def mask_secret(self, value: str) -> None:
        self.masked.append(value)

    def trigger_dag_run(
        self, *, dag_id: str, run_id: str | None, conf: dict, logical_date: str | None, reset_dag_run: bool
    ) -> dict:
        run_id = run_id or f"manual__{logical_date or 'now'}"
        exists = any(t["dag_id"] == dag_id and t["run_id"] == run_id for t in self.triggered)
        self.triggered.append(
            {
                "dag_id": dag_id,
                "run_id": run_id,
                "conf": conf,
                "logical_date": logical_date,
                "reset": reset_dag_run,
            }
        )
        return {"run_id": run_id, "state": "queued", "already_exists": exists}

    def get_dag_run_state(self, *, dag_id: str, run_id: str) -> str | None:
        states = self.dag_run_states.get((dag_id, run_id))
        if not states:
            return None
        return states.pop(0) if len(states) > 1 else states[0]

    def count_task_states(
        self,
        *,
        dag_id: str,
        task_ids: list[str] | None,
        task_group_id: str | None,
        logical_dates: list[str],
        states: list[str],
    ) -> int:
        return sum(
            1
            for row in self.task_states
            if row["dag_id"] == dag_id
            and (task_ids is None or row["task_id"] in task_ids)
            and (task_group_id is None or row["task_id"].startswith(task_group_id + "."))
            and row["logical_date"] in logical_dates
            and row["state"] in states
        )

    def count_dag_runs(self, *, dag_id: str, logical_dates: list[str], states: list[str]) -> int:
        return sum(
            1
            for row in self.dag_runs
            if row["dag_id"] == dag_id and row["logical_date"] in logical_dates and row["state"] in states
        )

    def get_asset_events(
        self, *, uri: str | None = None, name: str | None = None, alias: str | None = None
    ) -> list[dict]:
        query = {key: value for key, value in (("uri", uri), ("name", name), ("alias", alias)) if value}
        self.asset_event_queries.append(query)
        return self.asset_events.get(next(iter(query.items())), [])


@pytest.fixture
def client() -> Any:
    """An InMemoryClient installed as the execution client for the test."""
    fake = InMemoryClient()
    set_client(fake)
    yield fake
    set_client(None)


LOGICAL = datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC)


def make_ti_info(dag_id: str = "test_dag", task_id: str = "task", **overrides: Any) -> dict:
    """A ti_info as the parent builds it, for a scheduled daily run of 2024-01-02."""
    info = {
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": "scheduled__2024-01-02T00:00:00+00:00",
        "map_index": -1,
        "try_number": 1,
        "max_tries": 0,
        "logical_date": "2024-01-02T00:00:00+00:00",
        "data_interval_start": "2024-01-02T00:00:00+00:00",
        "data_interval_end": "2024-01-03T00:00:00+00:00",
        "run_after": "2024-01-03T00:00:00+00:00",
        "start_date": "2024-01-03T00:00:05+00:00",
        "ti_start_date": "2024-01-03T00:00:06+00:00",
        "run_type": "scheduled",
        "conf": {},
        "external_trigger": False,
        "prev_data_interval_start_success": "2024-01-01T00:00:00+00:00",
        "prev_data_interval_end_success": "2024-01-02T00:00:00+00:00",
        "prev_start_date_success": "2024-01-02T00:00:03+00:00",
        "prev_end_date_success": "2024-01-02T00:01:00+00:00",
        "next_method": None,
        "next_kwargs": None,
        "first_try_start_date": None,
    }
    info.update(overrides)
    return info


@pytest.fixture
def ti_info() -> Any:
    """The make_ti_info builder."""
    return make_ti_info


@pytest.fixture
def run(client: InMemoryClient) -> Any:
    """run(dag, task_id, **ti_info_overrides): run_task with a default ti_info, the client pointed at it;
    checks the outcome is JSON (it crosses a process boundary)."""
    import json

    from tradewind.sdk.execution import run_task

    def run_one(dag: Any, task_id: str, **overrides: Any) -> dict:
        info = make_ti_info(dag_id=dag.dag_id, task_id=task_id, **overrides)
        client.for_ti(info)
        outcome = run_task(dag, task_id, info)
        json.dumps(outcome)
        return outcome

    return run_one
