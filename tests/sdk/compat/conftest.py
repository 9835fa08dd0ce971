"""The compatibility layer is imported as the sandbox imports it: `workers/compat` first on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.sdk.execution.conftest import InMemoryClient, make_ti_info
from tradewind.sdk.execution import set_client

COMPAT_DIR = Path(__file__).resolve().parents[3] / "workers" / "compat"
DAGS_DIR = Path(__file__).resolve().parents[2] / "dags" / "compat"

if str(COMPAT_DIR) not in sys.path:
    sys.path.insert(0, str(COMPAT_DIR))


@pytest.fixture
def client() -> Any:
    """An in-memory execution client installed for the test."""
    fake = InMemoryClient()
    set_client(fake)
    yield fake
    set_client(None)


@pytest.fixture
def run(client: InMemoryClient) -> Any:
    """run(dag, task_id, **ti_info_overrides) -> outcome."""
    from tradewind.sdk.execution import run_task

    def run_one(dag: Any, task_id: str, **overrides: Any) -> dict:
        info = make_ti_info(dag_id=dag.dag_id, task_id=task_id, **overrides)
        client.for_ti(info)
        client.dag_id = dag.dag_id
        return run_task(dag, task_id, info)

    return run_one


@pytest.fixture
def dags_dir() -> Path:
    """tests/dags/compat."""
    return DAGS_DIR
