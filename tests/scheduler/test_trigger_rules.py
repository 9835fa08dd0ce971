"""Every trigger rule against combinations of upstream states, checked against Airflow's TriggerRuleDep
(with flag_upstream_failed, as the scheduler runs it): "scheduled" = the rule is met, "none" = it keeps
waiting, a finished state = what the rule propagates. Pure: no database."""

from __future__ import annotations

import pytest

from scheduler.evaluation import DagSpec
from tests.scheduler.engine import START, evaluated, spec_of
from tradewind.sdk import DAG
from tradewind.sdk.operators.empty import EmptyOperator

# (rule, upstream states, expected state of the downstream task instance)
TABLE = [
    # all_success: a failure fails it upstream at once, a skip skips it at once
    ("all_success", ["success", "success"], "scheduled"),
    ("all_success", ["success", "running"], "none"),
    ("all_success", ["success", "skipped"], "skipped"),
    ("all_success", ["skipped", "running"], "skipped"),
    ("all_success", ["success", "failed"], "upstream_failed"),
    ("all_success", ["upstream_failed", "running"], "upstream_failed"),
    ("all_success", ["failed", "skipped"], "upstream_failed"),
    ("all_success", ["up_for_retry", "success"], "none"),
    # all_failed: any success or skip skips it
    ("all_failed", ["failed", "upstream_failed"], "scheduled"),
    ("all_failed", ["failed", "running"], "none"),
    ("all_failed", ["failed", "success"], "skipped"),
    ("all_failed", ["failed", "skipped"], "skipped"),
    # all_done: anything finished counts
    ("all_done", ["success", "failed"], "scheduled"),
    ("all_done", ["upstream_failed", "skipped"], "scheduled"),
    ("all_done", ["success", "running"], "none"),
    ("all_done", ["failed", "up_for_retry"], "none"),
    # all_done_setup_success without setup upstreams behaves as all_done
    ("all_done_setup_success", ["failed", "skipped"], "scheduled"),
    ("all_done_setup_success", ["success", "queued"], "none"),
    # all_done_min_one_success (Airflow 3.1): a skip skips it; all done with no success fails it upstream
    ("all_done_min_one_success", ["success", "failed"], "scheduled"),
    ("all_done_min_one_success", ["success", "upstream_failed"], "scheduled"),
    ("all_done_min_one_success", ["failed", "upstream_failed"], "upstream_failed"),
    ("all_done_min_one_success", ["success", "skipped"], "skipped"),
    ("all_done_min_one_success", ["success", "running"], "none"),
    # all_skipped: any success/failure skips it
    ("all_skipped", ["skipped", "skipped"], "scheduled"),
    ("all_skipped", ["skipped", "running"], "none"),
    ("all_skipped", ["skipped", "success"], "skipped"),
    ("all_skipped", ["skipped", "failed"], "skipped"),
    ("all_skipped", ["upstream_failed", "running"], "skipped"),
    # one_success fires as soon as one upstream succeeded
    ("one_success", ["success", "running"], "scheduled"),
    ("one_success", ["failed", "running"], "none"),
    ("one_success", ["failed", "failed"], "upstream_failed"),
    ("one_success", ["failed", "skipped"], "upstream_failed"),
    ("one_success", ["skipped", "skipped"], "skipped"),
    # one_failed fires as soon as one upstream failed (upstream_failed counts)
    ("one_failed", ["failed", "running"], "scheduled"),
    ("one_failed", ["upstream_failed", "queued"], "scheduled"),
    ("one_failed", ["success", "running"], "none"),
    ("one_failed", ["success", "success"], "skipped"),
    ("one_failed", ["success", "skipped"], "skipped"),
    # one_done: one success or failure (upstream_failed does not count)
    ("one_done", ["success", "running"], "scheduled"),
    ("one_done", ["failed", "running"], "scheduled"),
    ("one_done", ["skipped", "running"], "none"),
    ("one_done", ["skipped", "skipped"], "skipped"),
    ("one_done", ["upstream_failed", "skipped"], "skipped"),
    # none_failed: successes and skips; a failure fails it upstream at once
    ("none_failed", ["success", "skipped"], "scheduled"),
    ("none_failed", ["skipped", "skipped"], "scheduled"),
    ("none_failed", ["success", "running"], "none"),
    ("none_failed", ["success", "failed"], "upstream_failed"),
    ("none_failed", ["upstream_failed", "running"], "upstream_failed"),
    # none_failed_min_one_success: as none_failed, but all skipped skips it
    ("none_failed_min_one_success", ["success", "skipped"], "scheduled"),
    ("none_failed_min_one_success", ["skipped", "skipped"], "skipped"),
    ("none_failed_min_one_success", ["skipped", "running"], "none"),
    ("none_failed_min_one_success", ["failed", "skipped"], "upstream_failed"),
    # none_skipped: any skip skips it; failures are fine
    ("none_skipped", ["success", "failed"], "scheduled"),
    ("none_skipped", ["failed", "upstream_failed"], "scheduled"),
    ("none_skipped", ["success", "running"], "none"),
    ("none_skipped", ["skipped", "running"], "skipped"),
    # always: whatever the upstream states
    ("always", ["running", "none"], "scheduled"),
    ("always", ["failed", "upstream_failed"], "scheduled"),
]


def _dag(rule: str, upstreams: int) -> DAG:
    with DAG("rules", schedule=None, start_date=START) as dag:
        downstream = EmptyOperator(task_id="t", trigger_rule=rule)
        for i in range(upstreams):
            EmptyOperator(task_id=f"u{i}") >> downstream
    return dag


@pytest.mark.parametrize(("rule", "upstream_states", "expected"), TABLE)
def test_trigger_rule(rule: str, upstream_states: list[str], expected: str) -> None:
    states = {f"u{i}": state for i, state in enumerate(upstream_states)}
    after, _ = evaluated(_dag(rule, len(upstream_states)), {**states, "t": "none"})
    assert after["t"] == expected


@pytest.mark.parametrize("rule", sorted({rule for rule, _, _ in TABLE}))
def test_task_without_upstream_runs_whatever_its_rule(rule: str) -> None:
    with DAG("alone", schedule=None, start_date=START) as dag:
        EmptyOperator(task_id="t", trigger_rule=rule)
    after, _ = evaluated(dag)
    assert after["t"] == "scheduled"


@pytest.mark.parametrize(
    ("alias", "upstream_states", "expected"),
    [
        ("dummy", ["failed", "running"], "scheduled"),  # Airflow 2's name for always
        ("none_failed_or_skipped", ["skipped", "skipped"], "skipped"),  # ... for none_failed_min_one_success
        ("none_failed_or_skipped", ["success", "skipped"], "scheduled"),
    ],
)
def test_deprecated_rule_names_run_as_their_new_rule(
    alias: str, upstream_states: list[str], expected: str
) -> None:
    serialized = spec_of(_dag("all_success", len(upstream_states)))
    raw = {
        "dag_id": "aliases",
        "tasks": [
            {"task_id": t.task_id, "upstream_task_ids": sorted(t.upstream), "trigger_rule": "all_success"}
            for t in serialized.tasks.values()
        ],
    }
    next(t for t in raw["tasks"] if t["task_id"] == "t")["trigger_rule"] = alias
    states = {f"u{i}": state for i, state in enumerate(upstream_states)}
    after, _ = evaluated(DagSpec.from_serialized(raw), {**states, "t": "none"})
    assert after["t"] == expected


def test_unknown_trigger_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="most_success"):
        DagSpec.from_serialized({"dag_id": "x", "tasks": [{"task_id": "t", "trigger_rule": "most_success"}]})


def test_waiting_task_says_why() -> None:
    _, decisions = evaluated(_dag("all_success", 2), {"u0": "success", "u1": "running", "t": "none"})
    assert "all_success" in decisions.waiting[("t", -1)]
    assert "success 1" in decisions.waiting[("t", -1)]
