"""The pure run evaluation on real SDK DAGs (no database): propagation, run states, setup/teardown, mapping,
retries, reschedules, depends_on_past, dagrun_timeout, deadlock, removed tasks, branch/short-circuit skips."""

from __future__ import annotations

import datetime as dt

import pytest

from scheduler import evaluation
from scheduler.evaluation import DagSpec, TISnapshot, evaluate, skips_for_outcome
from tests.scheduler.engine import NOW, START, evaluated, spec_of
from tradewind.sdk import DAG, TaskGroup, task, task_group
from tradewind.sdk.operators.empty import EmptyOperator
from tradewind.sdk.operators.python import PythonOperator


def chain_dag(n: int = 4, **task_kwargs) -> DAG:
    with DAG("chain", schedule=None, start_date=START) as dag:
        previous = None
        for i in range(n):
            current = EmptyOperator(task_id=f"t{i}", **task_kwargs)
            if previous is not None:
                previous >> current
            previous = current
    return dag


# --- propagation and run states ---------------------------------------------------------------------------


def test_roots_are_scheduled_and_a_queued_run_starts() -> None:
    after, decisions = evaluated(chain_dag(), run_state="queued")
    assert after == {"t0": "scheduled", "t1": "none", "t2": "none", "t3": "none"}
    assert decisions.run_state == "running"


def test_a_failure_propagates_down_the_whole_chain_in_one_evaluation() -> None:
    after, decisions = evaluated(chain_dag(), {"t0": "failed"})
    assert after == {
        "t0": "failed",
        "t1": "upstream_failed",
        "t2": "upstream_failed",
        "t3": "upstream_failed",
    }
    assert decisions.run_state == "failed"
    assert "t3" in decisions.failure_reason


def test_a_skip_propagates_and_a_skipped_run_succeeds() -> None:
    after, decisions = evaluated(chain_dag(), {"t0": "skipped"})
    assert set(after.values()) == {"skipped"}
    assert decisions.run_state == "success"


def test_run_state_comes_from_the_leaves() -> None:
    with DAG("leaves", schedule=None, start_date=START) as dag:
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b", trigger_rule="all_done")
        a >> b
    _, decisions = evaluated(dag, {"a": "failed", "b": "success"})
    assert (
        decisions.run_state == "success"
    )  # a failed, but the leaf b (all_done) succeeded: Airflow says success
    _, decisions = evaluated(dag, {"a": "success", "b": "failed"})
    assert decisions.run_state == "failed"


def test_run_stays_running_while_anything_is_unfinished() -> None:
    _, decisions = evaluated(chain_dag(2), {"t0": "running", "t1": "none"})
    assert decisions.run_state is None and decisions.is_empty


def test_a_finished_run_is_left_alone() -> None:
    _, decisions = evaluated(chain_dag(2), {"t0": "failed", "t1": "none"}, run_state="failed")
    assert decisions.is_empty


# --- setup and teardown -----------------------------------------------------------------------------------


def setup_teardown_dag(*, fail_dagrun: bool = False) -> DAG:
    with DAG("st", schedule=None, start_date=START) as dag:
        setup = EmptyOperator(task_id="setup").as_setup()
        work = EmptyOperator(task_id="work")
        teardown = EmptyOperator(task_id="teardown").as_teardown(
            setups=setup, on_failure_fail_dagrun=fail_dagrun
        )
        setup >> work >> teardown
    return dag


def test_teardown_waits_for_the_work_then_runs_after_a_failure() -> None:
    after, _ = evaluated(setup_teardown_dag(), {"setup": "success", "work": "running"})
    assert after["teardown"] == "none"
    after, decisions = evaluated(setup_teardown_dag(), {"setup": "success", "work": "failed"})
    assert after["teardown"] == "scheduled"
    assert decisions.run_state is None


def test_a_failed_work_task_fails_the_run_even_when_the_teardown_succeeds() -> None:
    _, decisions = evaluated(
        setup_teardown_dag(), {"setup": "success", "work": "failed", "teardown": "success"}
    )
    assert decisions.run_state == "failed"


def test_a_failed_teardown_does_not_fail_the_run() -> None:
    _, decisions = evaluated(
        setup_teardown_dag(), {"setup": "success", "work": "success", "teardown": "failed"}
    )
    assert decisions.run_state == "success"


def test_a_failed_teardown_fails_the_run_with_on_failure_fail_dagrun() -> None:
    dag = setup_teardown_dag(fail_dagrun=True)
    _, decisions = evaluated(dag, {"setup": "success", "work": "success", "teardown": "failed"})
    assert decisions.run_state == "failed"


def test_a_failed_setup_fails_work_and_teardown_upstream() -> None:
    after, decisions = evaluated(setup_teardown_dag(), {"setup": "failed"})
    assert after == {"setup": "failed", "work": "upstream_failed", "teardown": "upstream_failed"}
    assert decisions.run_state == "failed"


def test_a_skipped_setup_skips_work_and_teardown() -> None:
    after, decisions = evaluated(setup_teardown_dag(), {"setup": "skipped"})
    assert after == {"setup": "skipped", "work": "skipped", "teardown": "skipped"}
    assert decisions.run_state == "success"


def test_teardown_runs_when_one_of_its_setups_succeeded() -> None:
    with DAG("two_setups", schedule=None, start_date=START) as dag:
        s1 = EmptyOperator(task_id="s1").as_setup()
        s2 = EmptyOperator(task_id="s2").as_setup()
        work = EmptyOperator(task_id="work")
        td = EmptyOperator(task_id="td").as_teardown(setups=[s1, s2])
        [s1, s2] >> work >> td
    after, _ = evaluated(dag, {"s1": "success", "s2": "failed"})
    assert after["work"] == "upstream_failed"
    assert after["td"] == "scheduled"


def test_work_waits_for_an_indirect_setup_and_fails_with_it() -> None:
    with DAG("indirect", schedule=None, start_date=START) as dag:
        setup = EmptyOperator(task_id="setup").as_setup()
        first = EmptyOperator(task_id="first")
        second = EmptyOperator(task_id="second", trigger_rule="all_done")
        td = EmptyOperator(task_id="td").as_teardown(setups=setup)
        setup >> first >> second >> td
    assert spec_of(dag).relevant_setups["second"] == {"setup"}
    # second's own rule (all_done) is met once first is upstream_failed, but its setup failed
    after, _ = evaluated(dag, {"setup": "failed"})
    assert after["first"] == "upstream_failed"
    assert after["second"] == "upstream_failed"


# --- mapping ----------------------------------------------------------------------------------------------


def mapping_dag() -> DAG:
    with DAG("mapping", schedule=None, start_date=START) as dag:

        @task
        def make():
            return [1, 2, 3]

        @task
        def add(x, y):
            return x + y

        @task
        def double(v):
            return v * 2

        @task
        def total(values):
            return sum(values)

        added = add.partial(y=1).expand(x=make())
        doubled = double.expand(v=added)
        total(doubled)
        PythonOperator.partial(task_id="literal", python_callable=print).expand(op_args=[[1], [2], [3]])
        PythonOperator.partial(task_id="product", python_callable=print).expand(
            op_args=[[1], [2]], op_kwargs=[{"a": 1}, {"a": 2}, {"a": 3}]
        )
        PythonOperator.partial(task_id="kwargs", python_callable=print).expand_kwargs(
            [{"op_args": [1]}, {"op_args": [2]}]
        )
        PythonOperator.partial(task_id="empty", python_callable=print).expand(op_args=[])
    return dag


def test_literal_expansion_turns_the_placeholder_into_index_0_and_adds_the_rest() -> None:
    after, decisions = evaluated(mapping_dag(), {"make": "running"})
    assert {k: v for k, v in after.items() if k.startswith("literal")} == {
        "literal[0]": "scheduled",
        "literal[1]": "scheduled",
        "literal[2]": "scheduled",
    }
    placeholder = next(c for c in decisions.changes if c.task_id == "literal")
    assert (placeholder.map_index, placeholder.new_map_index) == (-1, 0)
    assert sum(1 for n in decisions.creates if n.task_id == "literal") == 2


def test_expand_is_a_product_and_expand_kwargs_a_list() -> None:
    after, _ = evaluated(mapping_dag(), {"make": "running"})
    assert sum(1 for k in after if k.startswith("product[")) == 6
    assert sum(1 for k in after if k.startswith("kwargs[")) == 2


def test_zero_length_expansion_skips_the_task() -> None:
    after, _ = evaluated(mapping_dag(), {"make": "running"})
    assert after["empty"] == "skipped"


def test_mapped_task_waits_for_its_xcom_source_then_expands_over_its_length() -> None:
    after, _ = evaluated(mapping_dag(), {"make": "running"})
    assert after["add"] == "none"
    after, _ = evaluated(mapping_dag(), {"make": "success"}, xcoms={("make", -1, "return_value"): 4})
    assert [after[f"add[{i}]"] for i in range(4)] == ["scheduled"] * 4
    assert "add" not in after


def multiple_outputs_dag() -> DAG:
    with DAG("outputs", schedule=None, start_date=START) as dag:

        @task(multiple_outputs=True)
        def split():
            return {"numbers": [1, 2, 3], "factor": 10}

        @task
        def times(x, factor):
            return x * factor

        parts = split()
        times.partial(factor=parts["factor"]).expand(x=parts["numbers"])
    return dag


def test_mapping_over_a_multiple_outputs_key_uses_that_keys_value() -> None:
    xcoms = {("split", -1, "return_value"): 2, ("split", -1, "numbers"): 3, ("split", -1, "factor"): None}
    after, _ = evaluated(multiple_outputs_dag(), {"split": "success"}, xcoms=xcoms)
    assert [after[f"times[{i}]"] for i in range(3)] == ["scheduled"] * 3


def test_missing_or_unmappable_xcom_fails_the_mapped_task_upstream() -> None:
    after, decisions = evaluated(mapping_dag(), {"make": "success"})
    assert after["add"] == "upstream_failed"
    assert "make" in decisions.notes["add"]
    after, decisions = evaluated(
        mapping_dag(), {"make": "success"}, xcoms={("make", -1, "return_value"): None}
    )
    assert after["add"] == "upstream_failed"
    assert "not a list or dict" in decisions.notes["add"]


def test_a_skipped_xcom_source_skips_the_mapped_task_and_everything_after() -> None:
    after, _ = evaluated(mapping_dag(), {"make": "skipped"})
    assert (after["add"], after["double"], after["total"]) == ("skipped", "skipped", "skipped")


def test_downstream_of_a_mapped_task_waits_for_every_map_index() -> None:
    states = {"make": "success", "add[0]": "success", "add[1]": "success", "add[2]": "running"}
    after, _ = evaluated(mapping_dag(), states, xcoms={("make", -1, "return_value"): 3})
    assert after["double"] == "none"


def test_mapping_over_a_mapped_task_counts_the_map_indexes_that_returned_a_value() -> None:
    states = {"make": "success", "add[0]": "success", "add[1]": "success", "add[2]": "success"}
    xcoms = {("make", -1, "return_value"): 3, **{("add", i, "return_value"): None for i in range(3)}}
    after, _ = evaluated(mapping_dag(), states, xcoms=xcoms)
    assert [after[f"double[{i}]"] for i in range(3)] == ["scheduled"] * 3
    assert after["total"] == "none"


def test_a_failed_map_index_fails_the_downstream_upstream() -> None:
    states = {"make": "success", "add[0]": "success", "add[1]": "failed", "add[2]": "success"}
    after, decisions = evaluated(mapping_dag(), states)
    assert after["double"] == "upstream_failed" and after["total"] == "upstream_failed"


def mapped_group_dag() -> DAG:
    with DAG("mapped_group", schedule=None, start_date=START) as dag:

        @task
        def first(v):
            return v

        @task
        def second(v):
            return v

        @task_group
        def per_item(v):
            second(first(v))

        @task
        def after_all():
            return None

        per_item.expand(v=[1, 2]) >> after_all()
    return dag


def test_a_mapped_task_group_expands_every_task_and_each_index_runs_on_its_own() -> None:
    after, _ = evaluated(mapped_group_dag())
    assert after == {
        "per_item.first[0]": "scheduled",
        "per_item.first[1]": "scheduled",
        "per_item.second[0]": "none",
        "per_item.second[1]": "none",
        "after_all": "none",
    }
    states = {
        "per_item.first[0]": "success",
        "per_item.first[1]": "running",
        "per_item.second[0]": "none",
        "per_item.second[1]": "none",
    }
    after, _ = evaluated(mapped_group_dag(), states)
    assert after["per_item.second[0]"] == "scheduled"
    assert after["per_item.second[1]"] == "none"
    assert after["after_all"] == "none"


def test_a_failure_in_a_mapped_group_stays_in_its_index() -> None:
    states = {
        "per_item.first[0]": "failed",
        "per_item.first[1]": "success",
        "per_item.second[0]": "none",
        "per_item.second[1]": "none",
    }
    after, _ = evaluated(mapped_group_dag(), states)
    assert after["per_item.second[0]"] == "upstream_failed"
    assert after["per_item.second[1]"] == "scheduled"
    assert after["after_all"] == "upstream_failed"


# --- retries and reschedules ------------------------------------------------------------------------------


def test_retry_delay_follows_airflows_formula() -> None:
    spec = spec_of(chain_dag(1, retries=5, retry_delay=dt.timedelta(seconds=10)))
    plain = spec.tasks["t0"]
    assert evaluation.retry_delay(plain, 1, seed="x") == dt.timedelta(seconds=10)
    assert evaluation.retry_delay(plain, 4, seed="x") == dt.timedelta(seconds=10)

    backoff = spec_of(
        chain_dag(1, retries=5, retry_delay=dt.timedelta(seconds=10), retry_exponential_backoff=True)
    ).tasks["t0"]
    for try_number in range(1, 6):
        base = 10 * 2 ** (try_number - 1)
        delay = evaluation.retry_delay(backoff, try_number, seed="dag#t0#run#-1").total_seconds()
        assert base <= delay < 2 * base  # Airflow: min_backoff + hash % min_backoff
        assert delay == evaluation.retry_delay(backoff, try_number, seed="dag#t0#run#-1").total_seconds()

    capped = spec_of(
        chain_dag(
            1,
            retries=9,
            retry_delay=dt.timedelta(seconds=10),
            retry_exponential_backoff=True,
            max_retry_delay=dt.timedelta(seconds=30),
        )
    ).tasks["t0"]
    assert evaluation.retry_delay(capped, 8, seed="x") == dt.timedelta(seconds=30)


def test_can_retry_counts_tries() -> None:
    task = spec_of(chain_dag(1, retries=2)).tasks["t0"]
    assert evaluation.can_retry(task, 1) and evaluation.can_retry(task, 2)
    assert not evaluation.can_retry(task, 3)
    assert not evaluation.can_retry(spec_of(chain_dag(1)).tasks["t0"], 1)


@pytest.mark.parametrize("state", ["up_for_retry", "up_for_reschedule"])
def test_waiting_tries_are_scheduled_when_due(state: str) -> None:
    later = {"t0": {"next_retry_at": NOW + dt.timedelta(seconds=1)}}
    after, _ = evaluated(chain_dag(1), {"t0": state}, extra=later)
    assert after["t0"] == state
    due = {"t0": {"next_retry_at": NOW}}
    after, _ = evaluated(chain_dag(1), {"t0": state}, extra=due)
    assert after["t0"] == "scheduled"


# --- depends_on_past, timeout, deadlock, removed tasks ----------------------------------------------------


def past_dag(**kwargs) -> DAG:
    with DAG("past", schedule=None, start_date=START) as dag:
        a = EmptyOperator(task_id="a", **kwargs)
        b = EmptyOperator(task_id="b")
        a >> b
    return dag


def test_depends_on_past_passes_on_the_first_run_and_after_success() -> None:
    assert evaluated(past_dag(depends_on_past=True))[0]["a"] == "scheduled"
    after, _ = evaluated(past_dag(depends_on_past=True), past={"a": ("success",), "b": ("failed",)})
    assert after["a"] == "scheduled"
    after, _ = evaluated(past_dag(depends_on_past=True), past={"b": ("success",)})  # a is new: ignore_first
    assert after["a"] == "scheduled"


def test_depends_on_past_waits_while_the_previous_try_runs() -> None:
    after, decisions = evaluated(past_dag(depends_on_past=True), past={"a": ("running",)})
    assert after["a"] == "none"
    assert decisions.run_state is None  # not a deadlock: the previous run may still succeed


def test_depends_on_past_after_a_failure_is_a_deadlock_with_its_reason() -> None:
    after, decisions = evaluated(past_dag(depends_on_past=True), past={"a": ("failed",)})
    assert after["a"] == "none"
    assert decisions.run_state == "failed"
    assert decisions.failure_reason.startswith("deadlock")
    assert "depends_on_past" in decisions.failure_reason


def test_wait_for_downstream_looks_at_the_previous_runs_downstream() -> None:
    after, _ = evaluated(past_dag(wait_for_downstream=True), past={"a": ("success",), "b": ("running",)})
    assert after["a"] == "none"
    after, _ = evaluated(past_dag(wait_for_downstream=True), past={"a": ("success",), "b": ("skipped",)})
    assert after["a"] == "scheduled"


def test_dagrun_timeout_fails_the_run_and_skips_what_is_unfinished() -> None:
    with DAG("timeout", schedule=None, start_date=START, dagrun_timeout=dt.timedelta(minutes=5)) as dag:
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        c = EmptyOperator(task_id="c")
        a >> [b, c]
    states = {"a": "success", "b": "running", "c": "none"}
    after, decisions = evaluated(dag, states, run_start_date=NOW - dt.timedelta(minutes=4))
    assert decisions.run_state is None
    after, decisions = evaluated(dag, states, run_start_date=NOW - dt.timedelta(minutes=6))
    assert after == {"a": "success", "b": "skipped", "c": "skipped"}
    assert decisions.run_state == "failed"
    assert "dagrun_timeout" in decisions.failure_reason


def test_a_removed_task_back_in_the_runs_version_is_restored() -> None:
    raw = {"dag_id": "back", "tasks": [{"task_id": "a"}, {"task_id": "b", "upstream_task_ids": ["a"]}]}
    after, _ = evaluated(DagSpec.from_serialized(raw), {"a": "removed", "b": "none"})
    assert after["a"] == "scheduled"


def test_nothing_that_can_ever_start_is_a_deadlock_not_a_hang() -> None:
    # a cycle (the parser refuses these): the evaluation terminates and says why the run failed
    raw = {
        "dag_id": "stuck",
        "tasks": [{"task_id": "a", "upstream_task_ids": ["b"]}, {"task_id": "b", "upstream_task_ids": ["a"]}],
    }
    after, decisions = evaluated(DagSpec.from_serialized(raw), {"a": "none", "b": "none"})
    assert after == {"a": "none", "b": "none"}
    assert decisions.run_state == "failed"
    assert decisions.failure_reason.startswith("deadlock: no task instance can ever run; a: trigger rule")


def test_tasks_missing_from_the_runs_version_are_removed_and_ignored_for_the_run_state() -> None:
    after, decisions = evaluated(chain_dag(2), {"t0": "success", "t1": "success", "gone": "failed"})
    assert after["gone"] == "removed"
    assert decisions.run_state == "success"


def test_a_task_new_in_the_runs_version_gets_its_row() -> None:
    spec = spec_of(chain_dag(2))
    decisions = evaluate(spec, [TISnapshot("t0", state="success", pk=1)], now=NOW)
    assert [(n.task_id, n.map_index, n.state) for n in decisions.creates] == [("t1", -1, "scheduled")]


def test_fail_fast_stops_the_other_tasks_but_not_teardowns() -> None:
    with DAG("ff", schedule=None, start_date=START, fail_fast=True) as dag:
        setup = EmptyOperator(task_id="setup").as_setup()
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        c = EmptyOperator(task_id="c")
        after_a = EmptyOperator(task_id="after_a")
        td = EmptyOperator(task_id="td").as_teardown(setups=setup)
        setup >> [a, b] >> td
        b >> c
        a >> after_a
    after, decisions = evaluated(dag, {"setup": "success", "a": "failed", "b": "running"})
    assert after["b"] == "failed" and after["c"] == "skipped"
    assert after["after_a"] == "skipped"  # stopped, as in Airflow, before its trigger rule could fail it
    assert after["td"] == "scheduled"


# --- branching and short-circuit --------------------------------------------------------------------------


def branch_dag() -> DAG:
    with DAG("branching", schedule=None, start_date=START) as dag:
        branch = EmptyOperator(task_id="branch")
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        with TaskGroup("grp"):
            g1 = EmptyOperator(task_id="g1")
            g2 = EmptyOperator(task_id="g2")
            g1 >> g2
        join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
        branch >> [a, b, g1] >> join
        branch >> join
    return dag


def test_branch_skips_the_direct_downstream_tasks_not_followed() -> None:
    spec = spec_of(branch_dag())
    # join is directly downstream of branch, but also of the followed a: Airflow keeps it
    assert skips_for_outcome(spec, "branch", -1, {"followed": ["a"]}) == [("b", None), ("grp.g1", None)]
    assert skips_for_outcome(spec, "branch", -1, {"followed": "grp"}) == [("a", None), ("b", None)]
    assert skips_for_outcome(spec, "branch", -1, {"followed": []}) == [
        ("a", None),
        ("b", None),
        ("grp.g1", None),
        ("join", None),
    ]
    assert skips_for_outcome(spec, "branch", -1, {"followed": None}) == []


def test_after_a_branch_the_join_runs_on_the_followed_path() -> None:
    states = {"branch": "success", "a": "success", "b": "skipped", "grp.g1": "skipped"}
    after, decisions = evaluated(branch_dag(), states)
    assert after["grp.g2"] == "skipped"
    assert after["join"] == "scheduled"


def short_circuit_dag() -> DAG:
    with DAG("sc", schedule=None, start_date=START) as dag:
        setup = EmptyOperator(task_id="setup").as_setup()
        gate = EmptyOperator(task_id="gate")
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b", trigger_rule="all_done")
        td = EmptyOperator(task_id="td").as_teardown(setups=setup)
        setup >> gate >> a >> b >> td
    return dag


def test_short_circuit_ignoring_trigger_rules_skips_everything_downstream_but_teardowns() -> None:
    spec = spec_of(short_circuit_dag())
    outcome = {"skip_downstream": {"task_ids": ["a"], "respect_trigger_rules": False}}
    assert skips_for_outcome(spec, "gate", -1, outcome) == [("a", None), ("b", None)]


def test_short_circuit_respecting_trigger_rules_skips_only_the_listed_tasks() -> None:
    spec = spec_of(short_circuit_dag())
    outcome = {"skip_downstream": {"task_ids": ["a"], "respect_trigger_rules": True}}
    assert skips_for_outcome(spec, "gate", -1, outcome) == [("a", None)]
    after, _ = evaluated(short_circuit_dag(), {"setup": "success", "gate": "success", "a": "skipped"})
    assert after["b"] == "scheduled"  # all_done is respected


def test_skips_of_a_mapped_branch_apply_to_its_own_map_index() -> None:
    spec = spec_of(branch_dag())
    assert skips_for_outcome(spec, "branch", 2, {"followed": ["a", "b", "grp"]}) == []
    assert skips_for_outcome(spec, "branch", 2, {"followed": ["a", "b"]}) == [("grp.g1", 2)]
