"""Priority weights as Airflow computes them, stored on each task instance when its run is created: the
scheduler queues by them (test_loop checks the order)."""

from __future__ import annotations

import pytest

from tests.factories import make_run
from tradewind.sdk import DAG
from tradewind.sdk.operators.empty import EmptyOperator

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("downstream", {"a": 2 + 3 + 4 + 5, "b": 3 + 4 + 5, "c": 4, "d": 5}),  # own + every downstream's
        ("upstream", {"a": 2, "b": 2 + 3, "c": 2 + 3 + 4, "d": 2 + 3 + 5}),  # own + every upstream's
        ("absolute", {"a": 2, "b": 3, "c": 4, "d": 5}),
    ],
)
def test_create_dag_run_sets_each_priority_weight_by_the_weight_rule(tenant, rule, expected):
    with DAG(f"weights_{rule}", schedule=None, default_args={"weight_rule": rule}) as dag:
        a, b, c, d = (
            EmptyOperator(task_id=t, priority_weight=w) for t, w in zip("abcd", (2, 3, 4, 5), strict=True)
        )
        a >> b >> [c, d]
    run = make_run(tenant, dag)
    assert dict(run.task_instances.values_list("task_id", "priority_weight")) == expected
