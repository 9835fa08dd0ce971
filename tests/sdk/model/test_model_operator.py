"""BaseOperator arguments: default_args merging, validation and normalisation, as Airflow does them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from tests.sdk.model.model_helpers import Op, SubOp
from tradewind.sdk import DAG, BaseOperator, Param, TaskGroup, TriggerRule
from tradewind.sdk.exceptions import (
    AirflowException,
    DuplicateTaskIdFound,
    ParamValidationError,
    TaskDeferred,
)

START = datetime(2024, 1, 1, tzinfo=UTC)


def test_default_args_precedence_dag_then_group_then_explicit():
    dag_defaults = {
        "retries": 1,
        "owner": "dag-owner",
        "queue": "dag-q",
        "pool": "dag-pool",
        "command": "dag-cmd",
    }
    outer_defaults = {"retries": 2, "owner": "outer-owner", "queue": "outer-q"}
    with (
        DAG("d", start_date=START, default_args=dag_defaults),
        TaskGroup("outer", default_args=outer_defaults),
        TaskGroup("inner", default_args={"retries": 3}),
    ):
        op = Op(task_id="t", default_args={"owner": "own-defaults"}, queue="explicit-q")
    assert op.retries == 3  # inner group beats outer group and DAG
    assert op.owner == "own-defaults"  # the operator's own default_args beat every group
    assert op.queue == "explicit-q"  # an explicit argument beats every default
    assert op.pool == "dag-pool"  # the DAG's default when nothing overrides it
    assert op.command == "dag-cmd"  # default_args reach subclass arguments too


def test_explicit_none_is_not_replaced_by_a_default():
    with DAG("d", start_date=START, default_args={"email": "a@example.com"}):
        op = Op(task_id="t", email=None)
    assert op.email is None


def test_default_args_fill_required_arguments_at_every_class_level():
    with DAG("d", start_date=START, default_args={"level": 7, "command": "from-dag"}):
        op = SubOp(task_id="t")
    assert (op.level, op.command) == (7, "from-dag")


def test_missing_required_argument_names_it():
    with DAG("d", start_date=START), pytest.raises(TypeError, match="missing keyword argument 'level'"):
        SubOp(task_id="t")


def test_missing_required_argument_is_also_an_airflow_exception():
    with DAG("d", start_date=START), pytest.raises(AirflowException):
        SubOp(task_id="t")


def test_unknown_kwargs_raise_like_airflow():
    with DAG("d", start_date=START), pytest.raises(TypeError) as err:
        Op(task_id="t", not_an_arg=1)
    assert "Invalid arguments were passed to Op (task_id: t)" in str(err.value)
    assert "not_an_arg" in str(err.value)
    assert isinstance(err.value, AirflowException)


def test_positional_arguments_are_refused():
    with DAG("d", start_date=START), pytest.raises(TypeError, match="Use keyword arguments"):
        Op("t")


def test_unknown_default_args_are_ignored():
    with DAG("d", start_date=START, default_args={"provide_context": True, "whatever": 1}):
        op = Op(task_id="t")
    assert not hasattr(op, "provide_context")


def test_params_merge_dag_then_task_then_default_args_params():
    params = {"a": 1, "b": Param(2, type="integer"), "c": 3}
    with DAG("d", start_date=START, params=params, default_args={"params": {"c": 30}}) as dag:
        op = Op(task_id="t", params={"b": 20}, default_args={"params": {"a": 10}})
    assert dag.params["c"] == 30  # DAG default_args params go into the DAG's params
    assert (op.params["a"], op.params["b"], op.params["c"]) == (10, 20, 30)
    assert dag.params["a"] == 1 and dag.params["b"] == 2  # the task got a copy


def test_task_param_value_is_checked_against_the_dag_param_schema():
    with (
        DAG("d", start_date=START, params={"n": Param(1, type="integer")}),
        pytest.raises(ParamValidationError),
    ):
        Op(task_id="t", params={"n": "not a number"})


def test_argument_normalisation():
    with DAG("d", start_date=START):
        op = Op(
            task_id="t",
            retries="3",
            retry_delay=30,
            max_retry_delay=600.0,
            trigger_rule="none_failed_or_skipped",
            weight_rule="upstream",
            inlets="one",
            outlets=["a", "b"],
            task_concurrency=4,
            wait_for_downstream=True,
        )
    assert op.retries == 3
    assert op.retry_delay == timedelta(seconds=30)
    assert op.max_retry_delay == timedelta(minutes=10)
    assert op.trigger_rule == TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    assert op.weight_rule == "upstream"
    assert op.inlets == ["one"] and op.outlets == ["a", "b"]
    assert op.max_active_tis_per_dag == 4
    assert op.depends_on_past is True  # wait_for_downstream implies depends_on_past
    assert op.pool == "default_pool" and op.queue == "default" and op.owner == "airflow"


def test_dummy_trigger_rule_becomes_always():
    op = Op(task_id="t", trigger_rule="dummy")
    assert op.trigger_rule == TriggerRule.ALWAYS


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"trigger_rule": "sometimes"}, ValueError),
        ({"weight_rule": "sideways"}, ValueError),
        ({"retries": "many"}, TypeError),
        ({"execution_timeout": 30}, ValueError),
        ({"pool_slots": 0}, ValueError),
        ({"task_id": "bad id!"}, ValueError),
        ({"task_id": "x" * 251}, ValueError),
    ],
)
def test_invalid_arguments(kwargs, error):
    with pytest.raises(error):
        Op(**{"task_id": "t", **kwargs})


def test_callbacks_accept_callables_and_lists():
    def one(context):
        return None

    def two(context):
        return None

    op = Op(task_id="t", on_failure_callback=[one, two], on_success_callback=one)
    assert op.on_failure_callback == [one, two]
    assert op.on_success_callback is one


def test_start_date_from_default_args_and_dag_bounds():
    with DAG("d", start_date=START, end_date=datetime(2024, 6, 1), default_args={"start_date": START}):
        early = Op(task_id="early", start_date=datetime(2023, 1, 1))
        late = Op(task_id="late", start_date=datetime(2024, 3, 1), end_date=datetime(2025, 1, 1))
    assert early.start_date == START  # a task cannot start before its DAG
    assert late.start_date == datetime(2024, 3, 1, tzinfo=UTC)  # naive datetimes are UTC
    assert late.end_date == datetime(2024, 6, 1, tzinfo=UTC)  # nor end after it


def test_every_airflow_argument_is_accepted():
    with DAG("d", start_date=START):
        op = Op(
            task_id="t",
            owner="me",
            email=["a@example.com"],
            email_on_retry=False,
            email_on_failure=False,
            retries=1,
            retry_delay=timedelta(seconds=1),
            retry_exponential_backoff=True,
            max_retry_delay=timedelta(hours=1),
            start_date=START,
            end_date=None,
            depends_on_past=True,
            ignore_first_depends_on_past=False,
            wait_for_past_depends_before_skipping=True,
            wait_for_downstream=False,
            params={"p": 1},
            default_args={},
            priority_weight=5,
            weight_rule="absolute",
            queue="q",
            pool="p",
            pool_slots=2,
            sla=timedelta(hours=1),
            execution_timeout=timedelta(minutes=5),
            on_execute_callback=None,
            on_failure_callback=None,
            on_success_callback=None,
            on_retry_callback=None,
            on_skipped_callback=None,
            pre_execute=None,
            post_execute=None,
            trigger_rule="all_done",
            resources={"cpus": 1},
            run_as_user="nobody",
            map_index_template="{{ task.task_id }}",
            max_active_tis_per_dag=1,
            max_active_tis_per_dagrun=1,
            executor="LocalExecutor",
            executor_config={"k": "v"},
            do_xcom_push=False,
            multiple_outputs=True,
            inlets=[],
            outlets=[],
            doc="d",
            doc_md="# d",
            doc_json="{}",
            doc_yaml="a: 1",
            doc_rst="d",
            task_display_name="T",
            logger_name="my.logger",
            allow_nested_operators=False,
        )
    assert op.priority_weight_total == 5
    assert op.log.name == "my.logger"
    assert op.sla == timedelta(hours=1)


def test_duplicate_task_id_is_refused():
    with DAG("d", start_date=START):
        Op(task_id="t")
        with pytest.raises(DuplicateTaskIdFound, match="Task id 't' has already been added to the DAG"):
            Op(task_id="t")


def test_operator_joins_dag_assigned_later():
    dag = DAG("d", start_date=START)
    op = Op(task_id="t")
    assert not op.has_dag()
    op.dag = dag
    assert dag.get_task("t") is op
    with pytest.raises(AirflowException, match="can not be changed"):
        op.dag = DAG("other", start_date=START)


def test_defer_raises_task_deferred_with_the_trigger():
    op = Op(task_id="t")
    with pytest.raises(TaskDeferred) as err:
        op.defer(trigger="a trigger", method_name="resume", kwargs={"k": 1}, timeout=5)
    assert (err.value.trigger, err.value.method_name, err.value.kwargs) == ("a trigger", "resume", {"k": 1})
    assert err.value.timeout == timedelta(seconds=5)


def test_resume_execution_calls_the_named_method():
    class Resumable(BaseOperator):
        def done(self, context, event=None):
            return (context, event)

    op = Resumable(task_id="t")
    assert op.resume_execution("done", {"event": 3}, {"ctx": 1}) == ({"ctx": 1}, 3)
    with pytest.raises(AirflowException, match="boom"):
        op.resume_execution("__fail__", {"error": "boom"}, {})


def test_pre_and_post_execute_hooks_run():
    calls = []
    op = Op(
        task_id="t",
        pre_execute=lambda ctx: calls.append(("pre", ctx)),
        post_execute=lambda ctx, r: calls.append(("post", r)),
    )
    op.pre_execute("c")
    op.post_execute("c", 42)
    assert calls == [("pre", "c"), ("post", 42)]


def test_deepcopy_keeps_the_dag_and_copies_the_rest():
    with DAG("d", start_date=START) as dag:
        op = Op(task_id="t", executor_config={"a": [1]})
    clone = copy.deepcopy(op)
    assert clone.dag is dag and clone is not op
    clone.executor_config["a"].append(2)
    assert op.executor_config == {"a": [1]}


def test_template_fields_string_becomes_tuple():
    class Single(BaseOperator):
        template_fields = "sql"

        def __init__(self, *, sql: str, **kwargs):
            super().__init__(**kwargs)
            self.sql = sql

    assert Single.template_fields == ("sql",)
    assert Single(task_id="t", sql="x").sql == "x"


def test_subclass_with_a_closed_signature():
    class Closed(BaseOperator):
        def __init__(self, task_id: str, size: int = 1) -> None:
            super().__init__(task_id=task_id)
            self.size = size

    with DAG("d", start_date=START, default_args={"size": 3, "retries": 2}):
        op = Closed(task_id="t")
    assert (op.size, op.retries) == (3, 2)


def test_attributes_set_before_super_init_keep_their_dependencies():
    class Early(BaseOperator):
        template_fields = ("source",)

        def __init__(self, *, source, **kwargs):
            self.source = source
            super().__init__(**kwargs)

    with DAG("d", start_date=START):
        upstream = Op(task_id="up")
        early = Early(task_id="early", source=upstream.output)
    assert early.upstream_task_ids == {"up"}
