"""TaskFlow decorators and mapped tasks, run through run_task."""

from __future__ import annotations

import datetime
from typing import TypedDict

import pytest

from tradewind.sdk.dag import DAG
from tradewind.sdk.decorators import setup, task, teardown
from tradewind.sdk.operators.bash import BashOperator
from tradewind.sdk.operators.empty import EmptyOperator
from tradewind.sdk.operators.python import PythonOperator
from tradewind.sdk.sensors.base import PokeReturnValue
from tradewind.sdk.xcom_arg import XComArg

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def make_dag(dag_id: str = "test_dag") -> DAG:
    return DAG(dag_id, schedule="@daily", start_date=START)


def value(client, task_id, key="return_value", map_index=-1):
    return client.xcoms[("test_dag", client.run_id, task_id, map_index, key)]


class Totals(TypedDict):
    count: int


def test_xcomarg_passing_between_tasks_with_implicit_dependencies(client, run):
    with make_dag() as dag:

        @task
        def extract() -> dict[str, int]:
            return {"a": 1, "b": 2}

        @task
        def total(numbers: dict, extra: int, ds=None) -> int:
            return sum(numbers.values()) + extra + int(ds[-2:])

        @task(multiple_outputs=False)
        def keys(data: dict) -> dict:
            return sorted(data)

        data = extract()
        result = total(data, extra=data["a"])
        keys(data)
    assert isinstance(result, XComArg)
    assert dag.get_task("total").upstream_task_ids == {"extract"}
    assert dag.get_task("extract").multiple_outputs is True
    assert dag.get_task("keys").multiple_outputs is False
    assert run(dag, "extract")["state"] == "success"
    assert value(client, "extract", "a") == 1 and value(client, "extract") == {"a": 1, "b": 2}
    outcome = run(dag, "total")
    assert outcome["state"] == "success", outcome["traceback"]
    assert value(client, "total") == 1 + 2 + 1 + 2


def test_multiple_outputs_inference_follows_the_return_annotation():
    with make_dag():

        @task
        def typed() -> Totals:
            return {"count": 1}

        @task
        def plain() -> list:
            return []

        @task
        def none():
            return None

        assert typed().operator.multiple_outputs is True
        assert plain().operator.multiple_outputs is False
        assert none().operator.multiple_outputs is False


def test_repeated_calls_get_unique_ids_and_override_changes_arguments():
    with make_dag() as dag:

        @task(retries=1)
        def step(n: int) -> int:
            """Adds one."""
            return n + 1

        first = step(1)
        second = step(first)
        third = step.override(task_id="custom", retries=5)(second)
    assert [first.operator.task_id, second.operator.task_id, third.operator.task_id] == [
        "step",
        "step__1",
        "custom",
    ]
    assert dag.get_task("custom").retries == 5 and dag.get_task("step__1").retries == 1
    assert dag.get_task("step").doc_md == "Adds one."


def test_bad_call_fails_at_parse_time_like_airflow():
    with make_dag():

        @task
        def needs(a, b):
            return a

        with pytest.raises(TypeError):
            needs(1)

        @task
        def bad_default(ds="x"):
            return ds

        with pytest.raises(ValueError, match="Context key parameter ds"):
            bad_default()


def test_templated_op_kwargs_and_context_access(client, run):
    with make_dag() as dag:

        @task
        def show(path: str, **context):
            return [path, context["ti"].task_id, context["params"]]

        show(path="/data/{{ ds_nodash }}")
    outcome = run(dag, "show")
    assert outcome["state"] == "success", outcome["traceback"]
    assert value(client, "show") == ["/data/20240102", "show", {}]


def test_task_bash_branch_short_circuit_and_sensor(client, run):
    with make_dag() as dag:

        @task.bash
        def say(word: str) -> str:
            return "echo {{ ds }} " + word

        @task.branch
        def choose() -> str:
            return "left"

        @task.short_circuit
        def gate() -> bool:
            return False

        @task.sensor(poke_interval=0.01, timeout=5)
        def ready() -> PokeReturnValue:
            return PokeReturnValue(is_done=True, xcom_value="payload")

        @task.bash
        def empty() -> str:
            return ""

        say("hi")
        choose() >> [EmptyOperator(task_id="left"), EmptyOperator(task_id="right")]
        gate() >> EmptyOperator(task_id="after_gate")
        ready()
        empty()
    assert run(dag, "say")["state"] == "success" and value(client, "say") == "2024-01-02 hi"
    assert run(dag, "choose")["followed"] == ["left"]
    assert run(dag, "gate")["skip_downstream"] == {"task_ids": ["after_gate"], "respect_trigger_rules": False}
    assert run(dag, "ready")["state"] == "success" and value(client, "ready") == "payload"
    outcome = run(dag, "empty")
    assert outcome["state"] == "failed" and "non-empty string" in outcome["error"]


def test_run_if_and_skip_if_decide_when_the_task_is_about_to_run(client, run):
    hooked = []

    def on_weekdays(context):
        return context["logical_date"].weekday() < 5  # 2024-01-02 is a Tuesday

    with make_dag() as dag:

        @task.run_if(on_weekdays)
        @task.bash
        def weekday_report() -> str:
            return "echo weekday"

        @task.skip_if(on_weekdays, skip_message="weekdays need no backup")
        @task(pre_execute=lambda context: hooked.append(context["ti"].task_id))
        def weekend_backup() -> str:
            return "backed up"

        @task.skip_if(lambda context: False)
        @task(pre_execute=lambda context: hooked.append(context["ti"].task_id))
        def always() -> str:
            return "ran"

        weekday_report()
        weekend_backup()
        always()
    assert run(dag, "weekday_report")["state"] == "success" and value(client, "weekday_report") == "weekday"
    skipped = run(dag, "weekend_backup")
    assert (skipped["state"], skipped["error"]) == ("skipped", "weekdays need no backup")
    assert run(dag, "always")["state"] == "success" and value(client, "always") == "ran"
    assert hooked == ["always"]  # the task's own pre_execute runs after the condition, when it holds
    with pytest.raises(TypeError, match="above a task decorator"):
        task.run_if(on_weekdays)(lambda: None)


def test_virtualenv_and_external_python_decorators_accept_their_options_and_run_in_process(client, run):
    # Airflow's example_branch_operator_decorator passes venv_cache_path to @task.branch_virtualenv.
    venv = {
        "requirements": ["numpy"],
        "venv_cache_path": "/tmp",
        "index_urls": ["https://x"],
        "use_dill": True,
    }
    with make_dag() as dag:

        @task.branch_virtualenv(task_id="venv_branch", system_site_packages=False, **venv)
        def venv_branch() -> str:
            return "left"

        @task.branch_external_python(
            task_id="external_branch", python="/usr/bin/python3", expect_airflow=False
        )
        def external_branch() -> str:
            return "right"

        @task.virtualenv(task_id="venv_task", python_version="3.11", **venv)
        def venv_task() -> int:
            return 7

        @task.external_python(python="/usr/bin/python3", expect_pendulum=True)
        def external_task() -> int:
            return 8

        venv_branch() >> [EmptyOperator(task_id="left"), EmptyOperator(task_id="right")]
        external_branch() >> dag.get_task("right")
        venv_task()
        external_task()
    assert run(dag, "venv_branch")["followed"] == ["left"]
    assert run(dag, "external_branch")["followed"] == ["right"]
    assert run(dag, "venv_task")["state"] == "success" and value(client, "venv_task") == 7
    assert run(dag, "external_task")["state"] == "success" and value(client, "external_task") == 8


def test_setup_and_teardown_decorators_mark_tasks():
    with make_dag() as dag:

        @setup
        def create():
            return "resource"

        @teardown(on_failure_fail_dagrun=True)
        def delete():
            return None

        @task
        def work():
            return 1

        created = create()
        created >> work() >> delete()
    assert dag.get_task("create").is_setup is True
    assert dag.get_task("delete").is_teardown is True
    assert dag.get_task("delete").on_failure_fail_dagrun is True


def test_mapped_decorated_task_runs_each_index(client, run):
    with make_dag() as dag:

        @task
        def numbers() -> list[int]:
            return [10, 20, 30]

        @task(map_index_template="item {{ task.op_kwargs['n'] }}")
        def add(n: int, offset: int) -> int:
            return n + offset

        @task
        def summarize(values: list[int]) -> int:
            return sum(values)

        summarize(add.partial(offset=1).expand(n=numbers()))
    assert run(dag, "numbers")["state"] == "success"
    for index in range(3):
        outcome = run(dag, "add", map_index=index)
        assert outcome["state"] == "success", outcome["traceback"]
    assert outcome["map_index_label"] == "item 30"
    assert [value(client, "add", map_index=i) for i in range(3)] == [11, 21, 31]
    assert run(dag, "summarize")["state"] == "success"
    assert value(client, "summarize") == 63


def test_mapped_classic_operators_and_expand_kwargs(client, run):
    with make_dag() as dag:
        BashOperator.partial(task_id="echo").expand(bash_command=["echo a", "echo {{ ds }}"])
        PythonOperator.partial(task_id="py", python_callable=lambda x, y: x * y).expand_kwargs(
            [{"op_kwargs": {"x": 2, "y": 3}}, {"op_kwargs": {"x": 4, "y": 5}}]
        )

        @task
        def pair(a: int, b: int) -> int:
            return a - b

        pair.expand_kwargs([{"a": 5, "b": 1}, {"a": 1, "b": 5}])
    assert run(dag, "echo", map_index=1)["state"] == "success"
    assert value(client, "echo", map_index=1) == "2024-01-02"
    assert run(dag, "py", map_index=1)["state"] == "success" and value(client, "py", map_index=1) == 20
    assert run(dag, "pair", map_index=1)["state"] == "success" and value(client, "pair", map_index=1) == -4


def test_mapped_task_without_map_index_fails(client, run):
    with make_dag() as dag:
        BashOperator.partial(task_id="echo").expand(bash_command=["echo a"])
    outcome = run(dag, "echo")
    assert outcome["state"] == "failed" and "map_index" in outcome["error"]


def test_tasks_of_a_mapped_task_group_get_their_index_values(client, run):
    from tradewind.sdk.taskgroup import task_group

    with make_dag() as dag:

        @task
        def double(x: int) -> int:
            return x * 2

        @task
        def label(x: int, doubled: int) -> str:
            return f"{x}->{doubled}"

        @task_group
        def pipeline(x: int):
            return label(x, double(x))

        pipeline.expand(x=[1, 2])
    for index in range(2):
        assert run(dag, "pipeline.double", map_index=index)["state"] == "success"
    outcome = run(dag, "pipeline.label", map_index=1)
    assert outcome["state"] == "success", outcome["traceback"]
    assert value(client, "pipeline.label", map_index=1) == "2->4"
