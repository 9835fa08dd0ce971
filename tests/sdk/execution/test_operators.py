"""Classic operators run through run_task: Bash (real subprocesses), branching, short-circuit,
TriggerDagRun, LatestOnly, Empty."""

from __future__ import annotations

import datetime
import time

import pendulum
import pytest

from tradewind.sdk.dag import DAG, Airflow2DAG
from tradewind.sdk.exceptions import AirflowException
from tradewind.sdk.operators.bash import BashOperator
from tradewind.sdk.operators.branch import BaseBranchOperator
from tradewind.sdk.operators.empty import DummyOperator, EmptyOperator
from tradewind.sdk.operators.latest_only import LatestOnlyOperator
from tradewind.sdk.operators.python import (
    BranchExternalPythonOperator,
    BranchPythonOperator,
    BranchPythonVirtualenvOperator,
    ExternalPythonOperator,
    PythonOperator,
    PythonVirtualenvOperator,
    ShortCircuitOperator,
)
from tradewind.sdk.operators.trigger_dagrun import TriggerDagRunOperator
from tradewind.sdk.taskgroup import TaskGroup

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def make_dag(dag_id: str = "test_dag", **kwargs) -> DAG:
    kwargs.setdefault("schedule", "@daily")
    kwargs.setdefault("start_date", START)
    return DAG(dag_id, **kwargs)


def xcom(client, task_id, key="return_value"):
    return client.xcoms.get(("test_dag", client.run_id, task_id, -1, key))


def test_bash_last_line_is_the_xcom_and_templates_render(client, run):
    with make_dag(params={"name": "x"}) as dag:
        BashOperator(task_id="task", bash_command="echo first; echo '{{ ds }} {{ params.name }}'")
        BashOperator(task_id="processed", bash_command="echo 7", output_processor=lambda out: int(out) * 2)
    assert run(dag, "task")["state"] == "success"
    assert xcom(client, "task") == "2024-01-02 x"
    assert run(dag, "processed")["state"] == "success" and xcom(client, "processed") == 14


def test_bash_exit_codes(client, run):
    with make_dag() as dag:
        BashOperator(task_id="fails", bash_command="echo oops; exit 3")
        BashOperator(task_id="skips", bash_command="exit 99")
        BashOperator(task_id="custom_skip", bash_command="exit 5", skip_on_exit_code=[5, 6])
        BashOperator(task_id="no_skip", bash_command="exit 99", skip_on_exit_code=None)
    outcome = run(dag, "fails")
    assert outcome["state"] == "failed" and "non-zero exit code 3" in outcome["error"]
    assert run(dag, "skips")["state"] == "skipped"
    assert run(dag, "custom_skip")["state"] == "skipped"
    assert run(dag, "no_skip")["state"] == "failed"


def test_bash_environment_and_cwd(client, run, tmp_path, monkeypatch):
    monkeypatch.setenv("FROM_PARENT", "inherited")
    script = 'echo "${FROM_PARENT:-unset} ${MINE:-unset} $AIRFLOW_CTX_DAG_ID $AIRFLOW_CTX_TASK_ID $(pwd)"'
    with make_dag() as dag:
        BashOperator(task_id="inherit", bash_command=script)
        BashOperator(task_id="only_env", bash_command=script, env={"MINE": "{{ ds }}"})
        BashOperator(
            task_id="append", bash_command=script, env={"MINE": "m"}, append_env=True, cwd=str(tmp_path)
        )
        BashOperator(task_id="bad_cwd", bash_command="true", cwd=str(tmp_path / "missing"))
    run(dag, "inherit")
    inherit = xcom(client, "inherit").split()
    assert inherit[:4] == ["inherited", "unset", "test_dag", "inherit"] and "airflowtmp" in inherit[4]
    run(dag, "only_env")
    assert xcom(client, "only_env").split()[:4] == ["unset", "2024-01-02", "test_dag", "only_env"]
    run(dag, "append")
    assert xcom(client, "append").split() == ["inherited", "m", "test_dag", "append", str(tmp_path)]
    outcome = run(dag, "bad_cwd")
    assert outcome["state"] == "failed" and "Can not find the cwd" in outcome["error"]


def test_bash_script_file_is_a_template(client, run, tmp_path):
    (tmp_path / "job.sh").write_text("echo script {{ ds_nodash }}\n")
    dag = make_dag(template_searchpath=str(tmp_path))
    with dag:
        BashOperator(task_id="task", bash_command="job.sh")
    outcome = run(dag, "task")
    assert outcome["state"] == "success", outcome["traceback"]
    assert xcom(client, "task") == "script 20240102"


def test_bash_timeout_kills_the_command(client, run):
    with make_dag() as dag:
        BashOperator(
            task_id="task", bash_command="sleep 30", execution_timeout=datetime.timedelta(seconds=0.5)
        )
    started = time.monotonic()
    outcome = run(dag, "task")
    assert time.monotonic() - started < 5
    assert outcome["state"] == "failed" and "AirflowTaskTimeout" in outcome["error"]


def test_branch_python_operator_follows_branches_and_joins(client, run):
    with make_dag() as dag:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "a")
        a, b, join = EmptyOperator(task_id="a"), EmptyOperator(task_id="b"), EmptyOperator(task_id="join")
        with TaskGroup("grp") as grp:
            EmptyOperator(task_id="inner")
        branch >> [a, b, join, grp]
        a >> join
        BranchPythonOperator(task_id="to_group", python_callable=lambda: ["grp"]) >> [a, grp]
        BranchPythonOperator(task_id="to_none", python_callable=lambda: None) >> [a, b]
        BranchPythonOperator(task_id="invalid", python_callable=lambda: "nope") >> a
    outcome = run(dag, "branch")
    assert outcome["state"] == "success" and outcome["followed"] == ["a", "join"]
    assert xcom(client, "branch") == "a"
    assert run(dag, "to_group")["followed"] == ["grp.inner"]
    assert run(dag, "to_none")["followed"] == []
    invalid = run(dag, "invalid")
    assert invalid["state"] == "failed" and "Invalid tasks found: ['nope']" in invalid["error"]


def test_virtualenv_and_external_python_operators_accept_every_option_and_run_in_process(client, run):
    # Airflow 2.10's example_python_context_operator passes use_airflow_context=True.
    options = {
        "use_airflow_context": True,
        "inherit_env": False,
        "serializer": "dill",
        "expect_airflow": False,
    }
    with make_dag() as dag:
        PythonVirtualenvOperator(
            task_id="venv",
            python_callable=lambda: 7,
            requirements=["numpy"],
            venv_cache_path="/tmp",
            system_site_packages=False,
            **options,
        )
        ExternalPythonOperator(
            task_id="external", python="/usr/bin/python3", python_callable=lambda: 8, **options
        )
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        BranchPythonVirtualenvOperator(task_id="venv_branch", python_callable=lambda: "a", **options) >> [
            a,
            b,
        ]
        BranchExternalPythonOperator(
            task_id="external_branch", python="/usr/bin/python3", python_callable=lambda: "b", **options
        ) >> [a, b]
        # partial() checks its arguments against the operator's parameters.
        PythonVirtualenvOperator.partial(
            task_id="mapped", python_callable=lambda x: x, system_site_packages=False, **options
        ).expand(op_args=[[1], [2]])
    assert dag.get_task("venv").requirements == ["numpy"]
    assert dag.get_task("mapped").is_mapped
    assert run(dag, "venv")["state"] == "success" and xcom(client, "venv") == 7
    assert run(dag, "external")["state"] == "success" and xcom(client, "external") == 8
    assert run(dag, "venv_branch")["followed"] == ["a"]
    assert run(dag, "external_branch")["followed"] == ["b"]


def test_base_branch_operator_subclass(client, run):
    class EvenDay(BaseBranchOperator):
        def choose_branch(self, context):
            return "even" if context["logical_date"].day % 2 == 0 else "odd"

    with make_dag() as dag:
        EvenDay(task_id="task") >> [EmptyOperator(task_id="even"), EmptyOperator(task_id="odd")]
    assert run(dag, "task")["followed"] == ["even"]


def test_short_circuit_skips_all_downstream_or_only_direct(client, run):
    with make_dag() as dag:
        go = ShortCircuitOperator(task_id="go", python_callable=lambda: "yes")
        stop = ShortCircuitOperator(task_id="stop", python_callable=lambda: 0)
        soft = ShortCircuitOperator(
            task_id="soft", python_callable=lambda: False, ignore_downstream_trigger_rules=False
        )
        go >> EmptyOperator(task_id="g1")
        stop >> EmptyOperator(task_id="s1") >> EmptyOperator(task_id="s2")
        soft >> EmptyOperator(task_id="f1") >> EmptyOperator(task_id="f2")
    outcome = run(dag, "go")
    assert outcome["skip_downstream"] is None and xcom(client, "go") == "yes"
    assert run(dag, "stop")["skip_downstream"] == {"task_ids": ["s1", "s2"], "respect_trigger_rules": False}
    assert run(dag, "soft")["skip_downstream"] == {"task_ids": ["f1"], "respect_trigger_rules": True}


def test_skip_mixin_from_a_custom_operator(client, run):
    from tradewind.sdk.operators.branch import SkipMixin

    class Skipper(PythonOperator, SkipMixin):
        def execute(self, context):
            self.skip(context["dag_run"], context["logical_date"], [self.dag.get_task("x")])

    with make_dag() as dag:
        Skipper(task_id="task", python_callable=lambda: None) >> EmptyOperator(task_id="x")
    assert run(dag, "task")["skip_downstream"] == {"task_ids": ["x"], "respect_trigger_rules": False}


def test_trigger_dag_run(client, run):
    with make_dag() as dag:
        TriggerDagRunOperator(
            task_id="task",
            trigger_dag_id="target_{{ ds_nodash }}",
            trigger_run_id="from_{{ run_id }}",
            conf={"day": "{{ ds }}"},
            logical_date="{{ data_interval_end }}",
        )
        TriggerDagRunOperator(
            task_id="wait",
            trigger_dag_id="other",
            trigger_run_id="r1",
            wait_for_completion=True,
            poke_interval=0.01,
        )
        TriggerDagRunOperator(task_id="bad_conf", trigger_dag_id="x", conf={"f": object()})
    outcome = run(dag, "task")
    assert outcome["state"] == "success", outcome["traceback"]
    assert client.triggered[0] == {
        "dag_id": "target_20240102",
        "run_id": "from_scheduled__2024-01-02T00:00:00+00:00",
        "conf": {"day": "2024-01-02"},
        "logical_date": "2024-01-03T00:00:00+00:00",
        "reset": False,
    }
    assert xcom(client, "task", "trigger_run_id") == "from_scheduled__2024-01-02T00:00:00+00:00"
    client.dag_run_states[("other", "r1")] = ["queued", "running", "success"]
    assert run(dag, "wait")["state"] == "success"
    client.dag_run_states[("other", "r1")] = ["running", "failed"]
    client.triggered.clear()
    outcome = run(dag, "wait")
    assert outcome["state"] == "failed" and "failed with failed states failed" in outcome["error"]
    assert run(dag, "bad_conf")["state"] == "failed"


def test_trigger_dag_run_existing_run(client, run):
    with make_dag() as dag:
        TriggerDagRunOperator(task_id="dup", trigger_dag_id="t", trigger_run_id="same")
        TriggerDagRunOperator(
            task_id="skip", trigger_dag_id="t", trigger_run_id="same", skip_when_already_exists=True
        )
    assert run(dag, "dup")["state"] == "success"
    assert "DagRunAlreadyExists" in run(dag, "dup")["error"]
    assert run(dag, "skip")["state"] == "skipped"


@pytest.mark.parametrize("dag_class", [DAG, Airflow2DAG])
def test_latest_only(client, run, dag_class):
    with dag_class("test_dag", schedule="@daily", start_date=START) as dag:
        LatestOnlyOperator(task_id="latest") >> [EmptyOperator(task_id="a"), EmptyOperator(task_id="b")]
    assert run(dag, "latest")["followed"] == []  # an old scheduled run
    assert run(dag, "latest", run_type="manual", external_trigger=True)["followed"] == ["a", "b"]
    now = pendulum.now("UTC").start_of("day")
    current = {
        "logical_date": now.subtract(days=1).isoformat(),
        "data_interval_start": now.subtract(days=1).isoformat(),
        "data_interval_end": now.isoformat(),
        "run_after": now.isoformat(),
    }
    assert run(dag, "latest", **current)["followed"] == ["a", "b"]


def test_empty_and_dummy_operators(client, run):
    with make_dag() as dag:
        EmptyOperator(task_id="e")
        DummyOperator(task_id="d")
    assert run(dag, "e")["state"] == "success" and run(dag, "d")["state"] == "success"
    assert isinstance(dag.get_task("d"), EmptyOperator)


def test_python_operator_requires_a_callable():
    with pytest.raises(AirflowException):
        PythonOperator(task_id="x", python_callable="not callable")


def test_python_operator_accepts_airflow_1s_provide_context_with_a_deprecation_warning(client, run):
    from tradewind.sdk.exceptions import RemovedInAirflow3Warning

    with make_dag() as dag, pytest.warns(RemovedInAirflow3Warning, match="provide_context"):
        PythonOperator(task_id="old", python_callable=lambda ds, **_: ds, provide_context=True)
    assert run(dag, "old")["state"] == "success"
    assert xcom(client, "old") == "2024-01-02"


def test_calendar_branching_and_day_of_week_sensor(client, run):
    from tradewind.sdk.operators.weekday import BranchDateTimeOperator, BranchDayOfWeekOperator, WeekDay
    from tradewind.sdk.sensors.weekday import DayOfWeekSensor

    with make_dag() as dag:
        BranchDayOfWeekOperator(
            task_id="dow",
            follow_task_ids_if_true="yes",
            follow_task_ids_if_false="no",
            week_day={WeekDay.TUESDAY, "Wednesday"},
            use_task_logical_date=True,
        ) >> [EmptyOperator(task_id="yes"), EmptyOperator(task_id="no")]
        BranchDateTimeOperator(
            task_id="window",
            follow_task_ids_if_true="in",
            follow_task_ids_if_false="out",
            target_lower=datetime.time(23),
            target_upper=datetime.time(1),
            use_task_logical_date=True,
        ) >> [EmptyOperator(task_id="in"), EmptyOperator(task_id="out")]
        DayOfWeekSensor(
            task_id="sunday", week_day="sunday", use_task_logical_date=True, timeout=0, poke_interval=0
        )
    assert run(dag, "dow")["followed"] == ["yes"]  # 2024-01-02 is a Tuesday
    assert run(dag, "window")["followed"] == ["out"]  # midnight is before 23:00 of the same day
    assert run(dag, "sunday")["state"] == "failed"


def test_email_operator_parses_but_cannot_send(client, run):
    from tradewind.sdk.operators.email import EmailOperator

    with make_dag() as dag:
        EmailOperator(task_id="mail", to="a@example.com", subject="Report {{ ds }}", html_content="<p>hi</p>")
    outcome = run(dag, "mail")
    assert outcome["state"] == "failed" and "cannot send mail" in outcome["error"]
    assert outcome["rendered_fields"]["subject"] == "Report 2024-01-02"
