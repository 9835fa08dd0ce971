"""DAG arguments, the Airflow 2 / Airflow 3 flavours, validation (cycles, params, setup rules) and @dag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jinja2
import pendulum
import pytest
from dateutil.relativedelta import relativedelta

from tests.sdk.model.model_helpers import Op
from tradewind.sdk import DAG, Airflow2DAG, Asset, DagContext, Param, airflow2_dag, dag
from tradewind.sdk.exceptions import (
    AirflowDagCycleException,
    AirflowException,
    ParamValidationError,
    TaskNotFound,
)
from tradewind.sdk.timetables import (
    AssetTriggeredTimetable,
    ContinuousTimetable,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DeltaDataIntervalTimetable,
    DeltaTriggerTimetable,
    EventsTimetable,
    NullTimetable,
    OnceTimetable,
)

START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("dag_class", "schedule", "expected"),
    [
        (Airflow2DAG, "@daily", CronDataIntervalTimetable),
        (DAG, "@daily", CronTriggerTimetable),
        (Airflow2DAG, timedelta(hours=1), DeltaDataIntervalTimetable),
        (DAG, timedelta(hours=1), DeltaTriggerTimetable),
        (DAG, relativedelta(months=1), DeltaTriggerTimetable),
        (DAG, None, NullTimetable),
        (Airflow2DAG, "@once", OnceTimetable),
        (DAG, "@continuous", ContinuousTimetable),
        (DAG, [Asset("s3://bucket/a"), Asset("s3://bucket/b")], AssetTriggeredTimetable),
        (DAG, Asset("s3://bucket/a") | Asset("s3://bucket/b"), AssetTriggeredTimetable),
        (DAG, EventsTimetable([START]), EventsTimetable),
    ],
)
def test_schedule_normalisation(dag_class, schedule, expected):
    kwargs = {"max_active_runs": 1} if schedule == "@continuous" else {}
    assert isinstance(dag_class("d", start_date=START, schedule=schedule, **kwargs).timetable, expected)


def test_flavour_defaults():
    airflow2 = Airflow2DAG("two", start_date=START)
    airflow3 = DAG("three", start_date=START)
    assert airflow2.catchup is True and airflow3.catchup is False
    assert isinstance(airflow2.timetable, DeltaDataIntervalTimetable)
    assert airflow2.schedule_interval == timedelta(days=1)
    assert isinstance(airflow3.timetable, NullTimetable) and airflow3.schedule_interval is None
    assert airflow2.airflow_version == 2 and airflow3.airflow_version == 3


def test_schedule_interval_always_means_data_intervals():
    assert isinstance(
        DAG("d", start_date=START, schedule_interval="@hourly").timetable, CronDataIntervalTimetable
    )
    assert DAG("d", start_date=START, schedule_interval="@hourly").schedule_interval == "@hourly"


def test_only_one_of_schedule_arguments():
    with pytest.raises(ValueError, match="At most one"):
        DAG("d", start_date=START, schedule="@daily", schedule_interval="@daily")


def test_invalid_schedule_type():
    with pytest.raises(ValueError, match="not a valid schedule"):
        DAG("d", start_date=START, schedule=42)
    with pytest.raises(ValueError, match="assets"):
        DAG("d", start_date=START, schedule=["@daily"])


def test_continuous_needs_one_active_run():
    with pytest.raises(ValueError, match="max_active_runs"):
        DAG("d", start_date=START, schedule="@continuous")


def test_airflow3_catchup_needs_a_start_date():
    with pytest.raises(ValueError, match="start_date is required when catchup=True"):
        DAG("d", schedule="@daily", catchup=True)
    assert DAG("d", schedule=None, catchup=True).catchup is True


def test_timezone_comes_from_the_start_date():
    berlin = DAG("d", start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Berlin"), schedule="0 6 * * *")
    assert berlin.timetable.to_dict()["timezone"] == "Europe/Berlin"
    assert berlin.start_date == datetime(2023, 12, 31, 23, tzinfo=UTC)
    naive = DAG("d", start_date=datetime(2024, 1, 1), schedule="0 6 * * *")
    assert naive.timetable.to_dict()["timezone"] == "UTC"
    from_defaults = DAG("d", default_args={"start_date": "2024-02-01"}, schedule="@daily")
    assert from_defaults.start_date == datetime(2024, 2, 1, tzinfo=UTC)


def test_dag_arguments_are_kept():
    def cb(context):
        return None

    d = DAG(
        "d",
        description="desc",
        start_date=START,
        end_date=datetime(2025, 1, 1),
        template_searchpath="/templates",
        user_defined_macros={"m": 1},
        user_defined_filters={"f": str},
        concurrency=3,
        max_active_runs=2,
        max_consecutive_failed_dag_runs=5,
        dagrun_timeout=timedelta(hours=1),
        sla_miss_callback=cb,
        default_view="graph",
        orientation="TB",
        catchup=True,
        on_success_callback=cb,
        on_failure_callback=[cb],
        doc_md="# doc",
        access_control={"role": {"can_read"}},
        is_paused_upon_creation=False,
        jinja_environment_kwargs={"keep_trailing_newline": True},
        render_template_as_native_obj=True,
        tags=["a", "b"],
        owner_links={"me": "https://example.com", "you": "mailto:you@example.com"},
        auto_register=False,
        fail_stop=True,
        dag_display_name="Nice name",
    )
    assert d.max_active_tasks == 3 == d.concurrency
    assert d.template_searchpath == ["/templates"]
    assert d.template_undefined is jinja2.StrictUndefined
    assert d.has_on_success_callback and d.has_on_failure_callback
    assert d.fail_fast and d.dag_display_name == "Nice name"
    assert d.end_date == datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "kwargs",
    [{"tags": ["x" * 101]}, {"owner_links": {"me": "not a link"}}, {"dagrun_timeout": "1h"}],
)
def test_invalid_dag_arguments(kwargs):
    with pytest.raises(ValueError):
        DAG("d", start_date=START, **kwargs)


def test_fail_stop_dag_refuses_other_trigger_rules():
    with DAG("d", start_date=START, fail_stop=True), pytest.raises(AirflowException, match="fail-stop"):
        Op(task_id="t", trigger_rule="all_done")


def test_cycle_is_reported_with_its_path():
    with DAG("d", start_date=START) as d:
        a, b, c = Op(task_id="a"), Op(task_id="b"), Op(task_id="c")
        Op(task_id="free")
        a >> b >> c >> a
    with pytest.raises(AirflowDagCycleException) as err:
        d.validate()
    message = str(err.value)
    assert message.startswith("Cycle detected in DAG: d. Faulty task: ")
    cycle = message.split("(cycle: ")[1].rstrip(")").split(" -> ")
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}


def test_self_loop_is_a_cycle():
    with DAG("d", start_date=START) as d:
        a = Op(task_id="a")
        a >> a
    with pytest.raises(AirflowDagCycleException, match="a -> a"):
        d.check_cycle()


def test_topological_sort_keeps_insertion_order_for_ties():
    with DAG("d", start_date=START) as d:
        c = Op(task_id="c")
        Op(task_id="a")
        b = Op(task_id="b")
        b >> c
    assert [t.task_id for t in d.topological_sort()] == ["a", "b", "c"]


def test_task_lookup_and_graph_properties():
    with DAG("d", start_date=START) as d:
        a, b = Op(task_id="a", owner="x"), Op(task_id="b", owner="y")
        a >> b
    assert d.get_task("a") is a and d.has_task("b") and not d.has_task("c")
    with pytest.raises(TaskNotFound):
        d.get_task("c")
    assert d.roots == [a] and d.leaves == [b] and d.owner == "x, y" and d.task_count == 2
    with pytest.raises(AttributeError):
        d.tasks = []  # type: ignore[misc]


def test_scheduled_dag_needs_valid_param_defaults():
    with pytest.raises(ParamValidationError, match="not allowed to define a Schedule"):
        DAG("d", start_date=START, schedule="@daily", params={"n": Param("x", type="integer")})
    with pytest.raises(ParamValidationError, match="required params"):
        DAG("d", start_date=START, schedule="@daily", params={"n": Param(type="integer")})
    assert DAG("d", start_date=START, schedule="@daily", params={"n": Param(None, type=["null", "integer"])})


def test_unscheduled_dag_may_have_params_without_valid_defaults():
    d = DAG(
        "d",
        start_date=START,
        schedule=None,
        params={"n": Param(type="integer"), "s": Param(None, type="string")},
    )
    d.validate()


def test_param_mutated_after_construction_is_checked_by_validate():
    d = DAG("d", start_date=START, schedule="@daily")
    d.params["bad"] = Param("x", type="integer")
    with pytest.raises(ParamValidationError):
        d.validate()


def test_setup_must_be_followed_by_all_success_tasks():
    with DAG("d", start_date=START) as d:
        setup = Op(task_id="setup").as_setup()
        setup >> Op(task_id="work", trigger_rule="all_done")
    with pytest.raises(ValueError, match="Setup tasks must be followed"):
        d.validate()


def test_context_manager_and_auto_registration():
    DagContext.current_autoregister_module_name = "my_module"
    try:
        with DAG("outer", start_date=START) as outer:
            with DAG("inner", start_date=START) as inner:
                assert DagContext.get_current() is inner
            assert DagContext.get_current() is outer
        with DAG("private", start_date=START, auto_register=False):
            pass
    finally:
        DagContext.current_autoregister_module_name = None
    assert DagContext.get_current() is None
    assert [(d.dag_id, m) for d, m in DagContext.autoregistered_dags] == [
        ("inner", "my_module"),
        ("outer", "my_module"),
    ]


def test_dag_decorator_function_arguments_become_params():
    @dag(schedule=None, start_date=START, tags=["t"])
    def pipeline(size: int = 3, name: str = Param("n", type="string")):
        """Pipeline docs."""
        Op(task_id="t", command="x")

    d = pipeline()
    assert d.dag_id == "pipeline" and d.doc_md == "Pipeline docs."
    assert d.params["size"] == 3 and d.params.get_param("name").schema == {"type": "string"}
    assert d.get_task("t").dag is d
    assert pipeline(size=10).params["size"] == 10
    with pytest.raises(TypeError):
        pipeline(nope=1)


def test_dag_decorator_forms():
    @dag
    def bare():
        Op(task_id="t")

    @dag("explicit_id", schedule="@daily", start_date=START)
    def named():
        Op(task_id="t")

    @airflow2_dag(start_date=START)
    def old_style():
        Op(task_id="t")

    assert bare().dag_id == "bare"
    assert named().dag_id == "explicit_id"
    legacy = old_style()
    assert isinstance(legacy, Airflow2DAG) and legacy.catchup is True


def test_dag_param_resolves_from_conf_then_default():
    @dag(schedule=None, start_date=START)
    def pipeline(size: int = 3):
        Op(task_id="t", command=size)

    d = pipeline()
    reference = d.get_task("t").command

    class Run:
        conf = {"size": 9}

    assert reference.resolve({"dag_run": Run(), "params": {}}) == 9
    Run.conf = {}
    assert reference.resolve({"dag_run": Run(), "params": {}}) == 3


def test_doc_md_from_a_markdown_file(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text("# From file")
    assert DAG("d", start_date=START, doc_md=str(doc)).doc_md == "# From file"


def test_dag_records_its_file():
    assert DAG("d", start_date=START).fileloc == __file__


def test_priority_weight_totals_follow_the_weight_rule():
    from tradewind.sdk.serialization import priority_weight_totals

    with DAG("d", start_date=START) as d:
        a = Op(task_id="a", priority_weight=1)
        b = Op(task_id="b", priority_weight=10)
        c = Op(task_id="c", priority_weight=100, weight_rule="upstream")
        e = Op(task_id="e", priority_weight=1000, weight_rule="absolute")
        a >> [b, c]
        b >> c >> e
    totals = priority_weight_totals(d)
    assert totals == {"a": 1111, "b": 1110, "c": 111, "e": 1000}
    assert {t.task_id: t.priority_weight_total for t in d.tasks} == totals


def test_dag_task_is_the_task_decorator_bound_to_the_dag():
    the_dag = DAG("bound", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC))  # no `with`

    @the_dag.task
    def hello():
        return "hi"

    @the_dag.task(multiple_outputs=True, retries=2)
    def parts():
        return {"a": 1}

    hello() >> parts()
    assert sorted(the_dag.task_dict) == ["hello", "parts"]
    assert the_dag.get_task("parts").retries == 2 and the_dag.get_task("parts").multiple_outputs is True
    assert the_dag.get_task("hello").downstream_task_ids == {"parts"}
