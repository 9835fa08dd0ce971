"""run_task: context, templating, XCom rules, outcomes for every way a task can end, callbacks, timeouts."""

from __future__ import annotations

import datetime
import time

import pendulum
import pytest

from tradewind.sdk.assets import Asset, AssetAlias, Metadata
from tradewind.sdk.context import get_current_context
from tradewind.sdk.dag import DAG, Airflow2DAG
from tradewind.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    DownstreamTasksSkipped,
)
from tradewind.sdk.execution import run_dag_callback
from tradewind.sdk.operators.empty import EmptyOperator
from tradewind.sdk.operators.python import PythonOperator
from tradewind.sdk.params import Param

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def make_dag(dag_id: str = "test_dag", **kwargs) -> DAG:
    kwargs.setdefault("schedule", "@daily")
    kwargs.setdefault("start_date", START)
    return DAG(dag_id, **kwargs)


def test_context_has_airflows_keys_and_values(client, run):
    seen = {}

    def capture(**context):
        seen.update(context)
        seen["current"] = get_current_context()

    with make_dag(params={"who": "world"}) as dag:
        PythonOperator(task_id="task", python_callable=capture)
    outcome = run(
        dag, "task", triggering_asset_events={"s3://b/k": [{"extra": {"n": 1}, "source_dag_id": "up"}]}
    )
    assert outcome["state"] == "success", outcome["traceback"]
    assert seen["ds"] == "2024-01-02" and seen["ds_nodash"] == "20240102"
    assert seen["ts"] == "2024-01-02T00:00:00+00:00" and seen["ts_nodash"] == "20240102T000000"
    assert seen["ts_nodash_with_tz"] == "20240102T000000+0000"
    assert isinstance(seen["logical_date"], pendulum.DateTime) and seen[
        "logical_date"
    ] == START + datetime.timedelta(days=1)
    assert seen["execution_date"] == seen["logical_date"]
    assert seen["data_interval_end"] == pendulum.datetime(2024, 1, 3)
    assert seen["prev_data_interval_start_success"] == pendulum.datetime(2024, 1, 1)
    assert seen["prev_start_date_success"] == pendulum.parse("2024-01-02T00:00:03+00:00")
    assert (seen["prev_ds"], seen["next_ds"]) == ("2024-01-01", "2024-01-03")
    assert (seen["yesterday_ds"], seen["tomorrow_ds_nodash"]) == ("2024-01-01", "20240103")
    assert seen["run_id"] == "scheduled__2024-01-02T00:00:00+00:00"
    assert seen["dag"] is dag and seen["task"].task_id == "task"
    assert seen["ti"] is seen["task_instance"] and seen["ti"].try_number == 1 and seen["ti"].map_index == -1
    dag_run = seen["dag_run"]
    assert (dag_run.run_type, dag_run.external_trigger, dag_run.conf) == ("scheduled", False, {})
    assert seen["params"] == {"who": "world"} and seen["test_mode"] is False
    assert seen["triggering_asset_events"]["s3://b/k"][0].extra == {"n": 1}
    assert seen["triggering_asset_events"][Asset("s3://b/k")][0].source_dag_id == "up"
    assert seen["task_instance_key_str"] == "test_dag__task__20240102"
    assert seen["current"]["ti"] is seen["ti"]
    assert seen["conf"].getboolean("core", "dag_run_conf_overrides_params") is True


def test_templates_see_ds_macros_params_var_and_conn(client, run):
    client.variables.update({"bucket": "b1", "cfg": '{"region": "eu"}'})
    client.connections["db"] = {"conn_type": "postgres", "host": "db.local", "port": 5432, "login": "u"}
    with make_dag(params={"limit": Param(10, type="integer"), "mode": "full"}) as dag:
        PythonOperator(
            task_id="task",
            python_callable=lambda **kw: None,
            op_kwargs={
                "when": "{{ ds }} {{ macros.ds_add(ds, 7) }} {{ data_interval_end | ds_nodash }}",
                "params": "{{ params.limit }}/{{ params.mode }}/{{ params.extra }}",
                "var": "{{ var.value.bucket }} {{ var.json.cfg.region }} {{ var.value.get('nope', 'dflt') }}",
                "conn": "{{ conn.db.host }}:{{ conn.db.port }}",
            },
            params={"extra": "task-level"},
        )
    outcome = run(dag, "task", conf={"mode": "delta"})
    assert outcome["state"] == "success", outcome["traceback"]
    assert outcome["rendered_fields"]["op_kwargs"] == {
        "when": "2024-01-02 2024-01-09 20240103",
        "params": "10/delta/task-level",
        "var": "b1 eu dflt",
        "conn": "db.local:5432",
    }


def test_invalid_param_from_conf_fails_the_task(client, run):
    with make_dag(params={"limit": Param(10, type="integer")}) as dag:
        EmptyOperator(task_id="task")
    outcome = run(dag, "task", conf={"limit": "lots"})
    assert outcome["state"] == "failed" and "ParamValidationError" in outcome["error"]


def test_callable_gets_only_the_context_keys_it_names_plus_op_args(client, run):
    def f(a, b, ds, ti=None, *, c="C"):
        return [a, b, ds, ti.task_id, c]

    with make_dag() as dag:
        PythonOperator(
            task_id="task", python_callable=f, op_args=[1, "{{ ds_nodash }}"], op_kwargs={"c": "x"}
        )
    outcome = run(dag, "task")
    assert outcome["state"] == "success", outcome["traceback"]
    assert client.xcoms[("test_dag", client.run_id, "task", -1, "return_value")] == [
        1,
        "20240102",
        "2024-01-02",
        "task",
        "x",
    ]


def test_xcom_pull_without_task_ids_reads_any_task_in_an_airflow_2_dag(client, run):
    pulled = {}

    def puller(ti):
        pulled["key"] = ti.xcom_pull(key="model_accuracy")
        pulled["missing"] = ti.xcom_pull(key="nobody_pushed", default="dflt")

    for dag_class, expected in ((Airflow2DAG, 0.93), (DAG, None)):  # Airflow 3: this task's own XComs
        with dag_class("test_dag", schedule=None, start_date=START) as dag:
            PythonOperator(task_id="task", python_callable=puller)
        client.push_for("train", 0.5, key="model_accuracy")
        client.push_for("evaluate", 0.93, key="model_accuracy")  # pushed last: Airflow 2 reads this one
        outcome = run(dag, "task")
        assert outcome["state"] == "success", outcome["traceback"]
        assert pulled == {"key": expected, "missing": "dflt"}


def test_op_args_clashing_with_context_keys_fail_like_airflow(client, run):
    with make_dag() as dag:
        PythonOperator(task_id="task", python_callable=lambda ds: ds, op_args=["x"])
    outcome = run(dag, "task")
    assert outcome["state"] == "failed" and "'ds' in args is a part of kwargs" in outcome["error"]


def test_xcom_pull_shaping_rules(client, run):
    pulled = {}

    def puller(ti):
        pulled["single"] = ti.xcom_pull(task_ids="up")
        pulled["list"] = ti.xcom_pull(task_ids=["up", "missing", "none_value"])
        pulled["mapped"] = ti.xcom_pull(task_ids="mapped")
        pulled["mapped_one"] = ti.xcom_pull(task_ids="mapped", map_indexes=1)
        # A list of ids gives one flat list (Airflow 2's lazy sequence, Airflow 3's extend), a mapped
        # task's values in map-index order; explicit map indexes pair with every id.
        pulled["with_mapped"] = ti.xcom_pull(task_ids=["up", "mapped", "missing"])
        pulled["pairs"] = ti.xcom_pull(task_ids=["mapped", "up"], map_indexes=[0, 2], default="d")
        pulled["key"] = ti.xcom_pull(task_ids="up", key="other")
        pulled["default"] = ti.xcom_pull(task_ids="missing", default="dflt")
        pulled["none"] = ti.xcom_pull(task_ids="none_value", default="dflt")
        pulled["own"] = ti.xcom_pull(key="mine")
        ti.xcom_push(key="mine", value={"when": pendulum.datetime(2024, 5, 1)})
        pulled["own_after"] = ti.xcom_pull(key="mine")

    with make_dag() as dag:
        PythonOperator(task_id="task", python_callable=puller)
    client.push_for("up", 41)
    client.push_for("up", "o", key="other")
    client.push_for("none_value", None)
    for index, value in [(2, "c"), (0, "a"), (1, "b")]:
        client.push_for("mapped", value, map_index=index)
    outcome = run(dag, "task")
    assert outcome["state"] == "success", outcome["traceback"]
    assert pulled == {
        "single": 41,
        "list": [41, None, None],
        "mapped": ["a", "b", "c"],
        "mapped_one": "b",
        "with_mapped": [41, "a", "b", "c", None],
        "pairs": ["a", "c", "d", "d"],
        "key": "o",
        "default": "dflt",
        "none": None,
        "own": None,
        "own_after": {"when": pendulum.datetime(2024, 5, 1)},
    }


def test_return_value_and_multiple_outputs_are_pushed(client, run):
    with make_dag() as dag:
        PythonOperator(task_id="task", python_callable=lambda: {"a": 1, "b": [2]}, multiple_outputs=True)
        PythonOperator(task_id="quiet", python_callable=lambda: 5, do_xcom_push=False)
        PythonOperator(task_id="bad_multi", python_callable=lambda: [1], multiple_outputs=True)
    assert run(dag, "task")["state"] == "success"
    assert (
        client.xcom_pull(
            dag_id="test_dag", run_id=client.run_id, task_ids=["task"], key="a", map_indexes=None
        )[0]["value"]
        == 1
    )
    assert client.xcoms[("test_dag", client.run_id, "task", -1, "return_value")] == {"a": 1, "b": [2]}
    assert run(dag, "quiet")["state"] == "success"
    assert not [k for k in client.xcoms if k[2] == "quiet"]
    outcome = run(dag, "bad_multi")
    assert outcome["state"] == "failed" and "expected dictionary for multiple_outputs" in outcome["error"]


def test_non_json_return_value_fails_naming_task_and_type(client, run):
    with make_dag() as dag:
        PythonOperator(task_id="task", python_callable=lambda: object())
        PythonOperator(task_id="dates", python_callable=lambda: {"d": datetime.date(2024, 1, 1)})
    outcome = run(dag, "task")
    assert outcome["state"] == "failed"
    assert "task 'task'" in outcome["error"] and "builtins.object" in outcome["error"]
    assert run(dag, "dates")["state"] == "success"


def _raiser(error):
    def fail():
        raise error

    return fail


@pytest.mark.parametrize(
    ("error", "state", "fail_fast"),
    [
        (AirflowSkipException("not today"), "skipped", False),
        (AirflowFailException("stop"), "failed", True),
        (AirflowSensorTimeout("late"), "failed", True),
        (AirflowException("boom"), "failed", False),
        (ValueError("bad"), "failed", False),
        (SystemExit(3), "failed", False),
    ],
)
def test_exceptions_become_outcomes(client, run, error, state, fail_fast):
    with make_dag() as dag:
        PythonOperator(task_id="task", python_callable=_raiser(error))
    outcome = run(dag, "task")
    assert (outcome["state"], outcome["fail_fast"]) == (state, fail_fast)
    if state == "failed":
        assert type(error).__name__ in outcome["error"] and "Traceback" in outcome["traceback"]


def test_downstream_tasks_skipped_is_success_with_skips(client, run):
    with make_dag() as dag:
        PythonOperator(task_id="task", python_callable=_raiser(DownstreamTasksSkipped(tasks=["a", ("b", 0)])))
    outcome = run(dag, "task")
    assert outcome["state"] == "success"
    assert outcome["skip_downstream"] == {"task_ids": ["a", "b"], "respect_trigger_rules": False}


def test_a_failure_callback_sees_the_tries_duration_and_log_url(client, run):
    seen = {}

    def alert(context):
        ti = context["ti"]
        seen["duration"] = ti.duration
        seen["log_url"] = ti.log_url

    def work(ti):
        seen["running"] = ti.duration  # no end yet: None, as in Airflow
        raise ValueError("boom")

    with make_dag() as dag:
        PythonOperator(task_id="slow", python_callable=work, on_failure_callback=alert)
    outcome = run(dag, "slow", try_number=2, max_tries=1)
    assert outcome["state"] == "failed"
    assert seen["running"] is None and seen["duration"] >= 0
    assert seen["log_url"] == f"http://ui.test/dags/test_dag/runs/{client.run_id}/tasks/slow/?try=2"


def test_callbacks_run_in_the_child_with_the_context(client, run):
    calls, states = [], []

    def record(kind):
        def callback(context):
            calls.append((kind, context["ti"].task_id, type(context.get("exception")).__name__))
            states.append((kind, context["ti"].state))

        return callback

    def broken(context):
        raise RuntimeError("callback bug")

    callbacks = {
        "on_execute_callback": record("execute"),
        "on_success_callback": [record("success"), broken],
        "on_failure_callback": record("failure"),
        "on_retry_callback": record("retry"),
        "on_skipped_callback": record("skipped"),
    }
    with make_dag() as dag:
        PythonOperator(task_id="ok", python_callable=lambda: 1, **callbacks)
        PythonOperator(task_id="flaky", python_callable=_raiser(ValueError("x")), retries=2, **callbacks)
        PythonOperator(task_id="skip", python_callable=_raiser(AirflowSkipException()), **callbacks)
        PythonOperator(
            task_id="fatal", python_callable=_raiser(AirflowFailException()), retries=2, **callbacks
        )
    outcome = run(dag, "ok")
    assert outcome["state"] == "success"
    assert [c["kind"] for c in outcome["callbacks_run"]] == [
        "on_execute_callback",
        "on_success_callback",
        "on_success_callback",
    ]
    assert "callback bug" in outcome["callbacks_run"][2]["error"]
    run(dag, "flaky", try_number=1, max_tries=2)
    run(dag, "flaky", try_number=3, max_tries=2)
    run(dag, "skip")
    run(dag, "fatal", try_number=1, max_tries=2)
    assert [c for c in calls if c[0] != "execute"] == [
        ("success", "ok", "NoneType"),
        ("retry", "flaky", "ValueError"),
        ("failure", "flaky", "ValueError"),
        ("skipped", "skip", "AirflowSkipException"),
        ("failure", "fatal", "AirflowFailException"),
    ]
    # Each callback sees the state its try ends in (alerting callbacks report ti.state), as in Airflow.
    assert set(states) == {
        ("execute", "running"),
        ("success", "success"),
        ("retry", "up_for_retry"),
        ("failure", "failed"),
        ("skipped", "skipped"),
    }


def test_execution_timeout_fails_the_task_in_process(client, run):
    with make_dag() as dag:
        PythonOperator(
            task_id="task",
            python_callable=lambda: time.sleep(5),
            execution_timeout=datetime.timedelta(seconds=0.3),
        )
    started = time.monotonic()
    outcome = run(dag, "task")
    assert time.monotonic() - started < 3
    assert outcome["state"] == "failed" and "AirflowTaskTimeout" in outcome["error"]
    assert not outcome["fail_fast"]


def test_unknown_task_is_a_failed_outcome(client, run):
    with make_dag() as dag:
        EmptyOperator(task_id="task")
    outcome = run(dag, "nope")
    assert outcome["state"] == "failed" and "nope" in outcome["error"]


def test_running_does_not_change_the_dags_task(client, run):
    with make_dag() as dag:
        op = PythonOperator(task_id="task", python_callable=lambda x: x, op_kwargs={"x": "{{ ds }}"})
    assert run(dag, "task")["state"] == "success"
    assert op.op_kwargs == {"x": "{{ ds }}"}


def test_asset_events_with_extras_metadata_and_aliases(client, run):
    def produce(outlet_events):
        outlet_events[Asset("s3://bucket/a")].extra = {"rows": 3}
        outlet_events[AssetAlias("my-alias")].add(Asset("s3://bucket/dynamic"), extra={"k": "v"})
        outlet_events["my-alias"].add(Asset("s3://bucket/by-name"))  # Airflow 2.10: the alias by its name
        outlet_events["s3://bucket/b"].extra = {"by": "uri"}  # an outlet asset's URI is that asset

    def produce_with_metadata():
        yield Metadata(Asset("s3://bucket/m"), {"from": "yield"})
        return "done"

    with make_dag() as dag:
        PythonOperator(
            task_id="task",
            python_callable=produce,
            outlets=[Asset("s3://bucket/a"), Asset("s3://bucket/b"), AssetAlias("my-alias")],
        )
        PythonOperator(
            task_id="meta", python_callable=produce_with_metadata, outlets=[Asset("s3://bucket/m")]
        )
        PythonOperator(
            task_id="fails", python_callable=_raiser(ValueError()), outlets=[Asset("s3://bucket/a")]
        )
    outcome = run(dag, "task")
    assert outcome["asset_events"] == [
        {"uri": "s3://bucket/a", "name": "s3://bucket/a", "extra": {"rows": 3}},
        {"uri": "s3://bucket/b", "name": "s3://bucket/b", "extra": {"by": "uri"}},
        {
            "uri": "s3://bucket/dynamic",
            "name": "s3://bucket/dynamic",
            "extra": {"k": "v"},
            "alias": "my-alias",
        },
        {"uri": "s3://bucket/by-name", "name": "s3://bucket/by-name", "extra": {}, "alias": "my-alias"},
    ]
    outcome = run(dag, "meta")
    assert outcome["asset_events"] == [
        {"uri": "s3://bucket/m", "name": "s3://bucket/m", "extra": {"from": "yield"}}
    ]
    assert client.xcoms[("test_dag", client.run_id, "meta", -1, "return_value")] == "done"
    assert run(dag, "fails")["asset_events"] == []


def test_inlet_events_are_asked_for_on_first_use_and_only_for_inlets(client, run):
    orders, nightly = Asset("s3://bucket/orders"), AssetAlias("nightly")

    def event(n: int, **more) -> dict:
        return {"uri": orders.uri, "extra": {"n": n}, "timestamp": f"2024-01-0{n}T00:00:00+00:00", **more}

    client.asset_events[("uri", orders.uri)] = [event(1), event(2, source_task_id="load")]
    client.asset_events[("alias", "nightly")] = [event(3, source_aliases=["nightly"])]
    seen = {}

    def read(inlet_events):
        seen["queries before use"] = list(client.asset_event_queries)
        events = inlet_events[orders]
        seen["extras"] = [e.extra["n"] for e in events]
        seen["latest"] = (events[-1].source_task_id, events[-1].timestamp, events[-1].asset.uri)
        seen["slice"] = [e.extra["n"] for e in inlet_events["s3://bucket/orders"][:1]]
        seen["by position"] = [e.extra["n"] for e in inlet_events[1]]
        seen["inlets"] = list(inlet_events)
        for not_an_inlet in (Asset("s3://bucket/other"), 7, None):
            with pytest.raises(KeyError):
                inlet_events[not_an_inlet]

    with make_dag() as dag:
        PythonOperator(task_id="task", python_callable=read, inlets=[orders, nightly, "not an asset"])
    assert run(dag, "task")["state"] == "success"
    assert seen["queries before use"] == []
    assert seen["extras"] == [1, 2] and seen["slice"] == [1] and seen["by position"] == [3]
    assert seen["latest"] == ("load", datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC), orders.uri)
    assert seen["inlets"] == [orders, nightly]
    assert client.asset_event_queries == [  # one question per inlet, however often it is read
        {"uri": orders.uri},
        {"alias": "nightly"},
    ]


def test_an_asset_ref_inlet_finds_the_assets_events_and_the_asset_finds_the_refs(client, run):
    """Airflow resolves Asset.ref inlets to their assets: a ref by name asks for the named asset's events, and
    the asset itself finds the same inlet."""
    target = Asset(uri="s3://bucket/ref-target", name="ref_target")
    client.asset_events[("name", "ref_target")] = [{"uri": target.uri, "extra": {"n": 1}}]
    seen = {}

    def read(inlet_events):
        by_ref = inlet_events[Asset.ref(name="ref_target")]
        seen["same accessor"] = inlet_events[target] is by_ref
        seen["extras"] = [e.extra["n"] for e in by_ref]
        with pytest.raises(KeyError):
            inlet_events[Asset.ref(name="another")]

    with make_dag() as dag:
        PythonOperator(task_id="task", python_callable=read, inlets=[Asset.ref(name="ref_target")])
    assert run(dag, "task")["state"] == "success"
    assert seen == {"same accessor": True, "extras": [1]}
    assert client.asset_event_queries == [{"name": "ref_target"}]


def test_async_callables_run_to_their_end_in_an_event_loop(client, run):
    import asyncio

    async def gather():
        values = await asyncio.gather(asyncio.sleep(0.01, result=1), asyncio.sleep(0.01, result=2))
        return sum(values)

    async def fails_silently_pushing_nothing():
        await asyncio.sleep(0)
        raise RuntimeError("the body ran")

    async def emits():
        await asyncio.sleep(0)
        yield Metadata(Asset("s3://bucket/async"), {"rows": 5})

    with make_dag() as dag:
        PythonOperator(task_id="gather", python_callable=gather)
        PythonOperator(task_id="fails", python_callable=fails_silently_pushing_nothing, do_xcom_push=False)
        PythonOperator(task_id="emits", python_callable=emits, outlets=[Asset("s3://bucket/async")])
    assert run(dag, "gather")["state"] == "success"
    assert client.xcoms[("test_dag", client.run_id, "gather", -1, "return_value")] == 3
    failed = run(dag, "fails")
    assert failed["state"] == "failed" and "the body ran" in failed["error"]
    assert run(dag, "emits")["asset_events"] == [
        {"uri": "s3://bucket/async", "name": "s3://bucket/async", "extra": {"rows": 5}}
    ]


def test_asset_event_extras_are_stored_as_json_dates_as_iso_strings(client, run):
    def stamp(outlet_events):
        outlet_events[Asset("s3://bucket/a")].extra = {"day": datetime.date(2024, 5, 6), "pair": (1, 2)}

    def unstorable(outlet_events):
        outlet_events[Asset("s3://bucket/a")].extra = {"when": datetime.timedelta(hours=1)}

    with make_dag() as dag:
        PythonOperator(task_id="stamp", python_callable=stamp, outlets=[Asset("s3://bucket/a")])
        PythonOperator(task_id="unstorable", python_callable=unstorable, outlets=[Asset("s3://bucket/a")])
    assert run(dag, "stamp")["asset_events"] == [
        {"uri": "s3://bucket/a", "name": "s3://bucket/a", "extra": {"day": "2024-05-06", "pair": [1, 2]}}
    ]
    failed = run(dag, "unstorable")
    assert failed["state"] == "failed"
    assert "The extra of asset 's3://bucket/a' holds a value of type timedelta" in failed["error"]


def test_airflow_context_environment_variables_are_exported(client, run):
    import os

    with make_dag() as dag:
        PythonOperator(task_id="task", python_callable=lambda: os.environ["AIRFLOW_CTX_DAG_RUN_ID"])
    assert run(dag, "task")["state"] == "success"
    assert client.xcoms[("test_dag", client.run_id, "task", -1, "return_value")] == client.run_id


def test_a_notifier_renders_its_fields_with_the_context_and_a_failing_one_changes_nothing(client, run):
    from tradewind.sdk.notifier import BaseNotifier

    sent = []

    class Chat(BaseNotifier):
        template_fields = ("message",)

        def __init__(self, message):
            super().__init__()
            self.message = message

        def notify(self, context):
            sent.append(self.message)

    class Down(BaseNotifier):
        def notify(self, context):
            raise ConnectionError("the chat service is down")

    with make_dag(user_defined_macros={"team": "data"}) as dag:
        PythonOperator(
            task_id="load",
            python_callable=_raiser(ValueError("x")),
            on_failure_callback=[Chat("{{ team }}: {{ ti.task_id }} failed on {{ ds }}"), Down()],
        )
    outcome = run(dag, "load")
    assert outcome["state"] == "failed"
    assert sent == ["data: load failed on 2024-01-02"]


def test_dag_callbacks_get_a_context_with_the_reason(client, run, ti_info):
    calls = []
    dag = make_dag(
        on_failure_callback=lambda context: calls.append(
            (context["reason"], context["ti"].task_id, context["ds"])
        ),
        on_success_callback=[lambda context: calls.append(("ok", context["dag_run"].run_id))],
    )
    with dag:
        EmptyOperator(task_id="last")
    failed = run_dag_callback(dag, "failure", {**ti_info(task_id="last"), "reason": "task_failure"})
    succeeded = run_dag_callback(dag, "success", {**ti_info(task_id=None)})
    assert failed["error"] is None and succeeded["callbacks_run"][0]["kind"] == "on_success_callback"
    assert calls == [("task_failure", "last", "2024-01-02"), ("ok", "scheduled__2024-01-02T00:00:00+00:00")]


def test_custom_operator_defers_and_resumes_in_its_method(client, run):
    from tradewind.sdk.baseoperator import BaseOperator
    from tradewind.sdk.triggers import TimeDeltaTrigger

    class WaitThenReport(BaseOperator):
        def execute(self, context):
            self.defer(
                trigger=TimeDeltaTrigger(datetime.timedelta(seconds=5)),
                method_name="finish",
                kwargs={"since": context["ds"]},
                timeout=datetime.timedelta(minutes=1),
            )

        def finish(self, context, event=None, since=None):
            return f"{since} {event is not None}"

    with make_dag() as dag:
        WaitThenReport(task_id="task")
    outcome = run(dag, "task")
    assert outcome["state"] == "deferred"
    trigger = outcome["trigger"]
    assert (trigger["method_name"], trigger["next_kwargs"], trigger["timeout_s"]) == (
        "finish",
        {"since": "2024-01-02"},
        60,
    )
    resumed = run(dag, "task", next_method="finish", next_kwargs={**trigger["next_kwargs"], "event": "fired"})
    assert resumed["state"] == "success", resumed["traceback"]
    assert client.xcoms[("test_dag", client.run_id, "task", -1, "return_value")] == "2024-01-02 True"
    failed = run(dag, "task", next_method="__fail__", next_kwargs={"error": "Trigger failure"})
    assert failed["state"] == "failed" and "TaskDeferralError" in failed["error"]


def test_on_kill_runs_when_the_timeout_interrupts_execute(client, run):
    killed = []

    class Slow(PythonOperator):
        def on_kill(self):
            killed.append(self.task_id)

    with make_dag() as dag:
        Slow(
            task_id="task",
            python_callable=lambda: time.sleep(5),
            execution_timeout=datetime.timedelta(seconds=0.2),
        )
    assert run(dag, "task")["state"] == "failed"
    assert killed == ["task"]


def test_ti_info_dates_are_parsed_once_each_into_utc():
    from tradewind.sdk.context import parse_datetime

    first = parse_datetime("2024-03-10T07:30:00.123456+05:30")
    assert first == pendulum.datetime(2024, 3, 10, 2, 0, 0, 123456) and first.timezone_name == "UTC"
    assert parse_datetime("2024-03-10T07:30:00.123456+05:30") is first  # the same string: the same object
    with pytest.raises(ValueError, match="Not a date-time"):
        parse_datetime("P1D")  # a duration parses, but is not a date-time
    naive = parse_datetime("2024-03-10T07:30:00")  # no offset: UTC, as pendulum reads it
    assert naive == pendulum.datetime(2024, 3, 10, 7, 30) and naive.timezone_name == "UTC"
    ordinal = parse_datetime("2024-070T02:00:00Z")  # a form Python's own parser does not read
    assert ordinal == pendulum.datetime(2024, 3, 10, 2) and isinstance(ordinal, pendulum.DateTime)
