"""Every Airflow import path of the compatibility layer imports and gives Tradewind's objects."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import tradewind.sdk as sdk
from tradewind.sdk.dag import DAG as NativeDAG
from tradewind.sdk.dag import Airflow2DAG

PATHS = {
    "airflow": ["DAG", "Dataset", "XComArg", "AirflowException", "version"],
    "airflow.models": [
        "DAG",
        "BaseOperator",
        "Variable",
        "Connection",
        "Param",
        "XCom",
        "DagRun",
        "TaskInstance",
        "MappedOperator",
        "SkipMixin",
        "XComArg",
    ],
    "airflow.models.dag": ["DAG"],
    "airflow.models.baseoperator": ["BaseOperator", "chain", "cross_downstream", "chain_linear"],
    "airflow.models.param": ["Param", "ParamsDict"],
    "airflow.models.variable": ["Variable"],
    "airflow.models.connection": ["Connection"],
    "airflow.models.xcom_arg": ["XComArg"],
    "airflow.models.xcom": ["XCom", "XCOM_RETURN_KEY"],
    "airflow.models.baseoperatorlink": ["BaseOperatorLink"],
    "airflow.models.taskinstancekey": ["TaskInstanceKey"],
    "airflow.utils.xcom": ["XCOM_RETURN_KEY"],
    "airflow.utils.email": ["send_email", "send_email_smtp"],
    "airflow.utils.dag_parsing_context": ["get_parsing_context", "AirflowParsingContext"],
    "airflow.hooks.subprocess": ["SubprocessHook", "SubprocessResult", "working_directory"],
    "airflow.io.path": ["ObjectStoragePath"],
    "airflow.decorators": ["dag", "task", "task_group", "setup", "teardown"],
    "airflow.operators.empty": ["EmptyOperator"],
    "airflow.operators.dummy": ["DummyOperator"],
    "airflow.operators.dummy_operator": ["DummyOperator"],
    "airflow.operators.python": [
        "PythonOperator",
        "BranchPythonOperator",
        "ShortCircuitOperator",
        "PythonVirtualenvOperator",
        "get_current_context",
    ],
    "airflow.operators.python_operator": ["PythonOperator", "BranchPythonOperator"],
    "airflow.operators.bash": ["BashOperator"],
    "airflow.operators.bash_operator": ["BashOperator"],
    "airflow.operators.branch": ["BaseBranchOperator"],
    "airflow.operators.trigger_dagrun": ["TriggerDagRunOperator"],
    "airflow.operators.latest_only": ["LatestOnlyOperator"],
    "airflow.sdk.exceptions": [
        "AirflowException",
        "AirflowSkipException",
        "AirflowTaskTimeout",
        "AirflowSensorTimeout",
        "AirflowRescheduleException",
        "TaskDeferred",
        "DownstreamTasksSkipped",
        "ParamValidationError",
    ],
    # Airflow 1 paths that Airflow 2 still resolves
    "airflow.operators.branch_operator": ["BaseBranchOperator"],
    "airflow.operators.dagrun_operator": ["TriggerDagRunOperator"],
    "airflow.operators.email_operator": ["EmailOperator"],
    "airflow.operators.latest_only_operator": ["LatestOnlyOperator"],
    "airflow.sensors.time_delta_sensor": ["TimeDeltaSensor"],
    "airflow.sensors.date_time_sensor": ["DateTimeSensor"],
    "airflow.contrib.sensors.file_sensor": ["FileSensor"],
    "airflow.contrib.sensors.bash_sensor": ["BashSensor"],
    "airflow.contrib.sensors.python_sensor": ["PythonSensor"],
    "airflow.contrib.sensors.weekday_sensor": ["DayOfWeekSensor"],
    "airflow.sensors.base": ["BaseSensorOperator", "PokeReturnValue"],
    "airflow.sensors.python": ["PythonSensor"],
    "airflow.sensors.filesystem": ["FileSensor"],
    "airflow.sensors.bash": ["BashSensor"],
    "airflow.sensors.time_delta": ["TimeDeltaSensor", "TimeDeltaSensorAsync"],
    "airflow.sensors.date_time": ["DateTimeSensor", "DateTimeSensorAsync"],
    "airflow.sensors.time_sensor": ["TimeSensor", "TimeSensorAsync"],
    "airflow.sensors.external_task": ["ExternalTaskSensor", "ExternalTaskMarker"],
    "airflow.triggers.temporal": ["DateTimeTrigger", "TimeDeltaTrigger"],
    "airflow.triggers.base": ["BaseTrigger", "TriggerEvent"],
    "airflow.utils.task_group": ["TaskGroup"],
    "airflow.utils.trigger_rule": ["TriggerRule"],
    "airflow.utils.dates": ["days_ago"],
    "airflow.utils.edgemodifier": ["Label"],
    "airflow.utils.helpers": ["chain", "cross_downstream"],
    "airflow.utils.timezone": ["utcnow", "datetime", "parse", "make_aware", "convert_to_utc"],
    "airflow.utils.context": ["Context", "get_current_context"],
    "airflow.utils.state": ["State", "TaskInstanceState", "DagRunState"],
    "airflow.exceptions": [
        "AirflowException",
        "AirflowSkipException",
        "AirflowFailException",
        "AirflowSensorTimeout",
        "AirflowNotFoundException",
        "TaskDeferred",
    ],
    "airflow.hooks.base": ["BaseHook"],
    "airflow.datasets": ["Dataset", "DatasetAlias"],
    "airflow.timetables.base": ["Timetable", "DataInterval", "TimeRestriction", "DagRunInfo"],
    "airflow.timetables.interval": ["CronDataIntervalTimetable", "DeltaDataIntervalTimetable"],
    "airflow.timetables.trigger": ["CronTriggerTimetable"],
    "airflow.timetables.simple": ["NullTimetable", "OnceTimetable", "ContinuousTimetable"],
    "airflow.macros": ["ds_add", "ds_format", "datetime", "timedelta", "yaml"],
    "airflow.configuration": ["conf"],
    "airflow.sdk": [
        "DAG",
        "dag",
        "task",
        "task_group",
        "TaskGroup",
        "Param",
        "Asset",
        "AssetAlias",
        "Metadata",
        "Variable",
        "Connection",
        "BaseOperator",
        "BaseSensorOperator",
        "BaseHook",
        "chain",
        "cross_downstream",
        "chain_linear",
        "Label",
        "get_current_context",
        "TriggerRule",
        "setup",
        "teardown",
        "XComArg",
        "Context",
        "PokeReturnValue",
        "BaseNotifier",
        "TaskInstanceState",
        "DagRunState",
        "conf",
        "AssetOrTimeSchedule",
        "CronTriggerTimetable",
        "CronDataIntervalTimetable",
        "DeltaTriggerTimetable",
        "DeltaDataIntervalTimetable",
        "MultipleCronTriggerTimetable",
        "EventsTimetable",
        "ObjectStoragePath",
        "BaseOperatorLink",
        "get_parsing_context",
    ],
    "airflow.sdk.io": ["ObjectStoragePath"],
    "airflow.sdk.io.path": ["ObjectStoragePath"],
    "airflow.sdk.bases.operatorlink": ["BaseOperatorLink"],
    "airflow.sdk.definitions.asset.decorators": ["asset", "AssetDefinition", "MultiAssetDefinition"],
    "airflow.sdk.bases.notifier": ["BaseNotifier"],
    "airflow.models.dataset": ["Dataset", "DatasetAlias", "DatasetAll", "DatasetAny"],
    "airflow.notifications.basenotifier": ["BaseNotifier"],
    "airflow.sdk.timezone": ["utcnow", "datetime", "parse", "make_aware", "utc"],
    "airflow.sdk.definitions.asset": ["Asset", "AssetAlias", "AssetAll", "AssetAny"],
    "airflow.sdk.bases.operator": ["BaseOperator"],
    "airflow.sdk.bases.sensor": ["BaseSensorOperator", "PokeReturnValue"],
    "airflow.sdk.api.datamodels._generated": [
        "TriggerRule",
        "DagRunState",
        "TaskInstanceState",
        "DagRunType",
        "WeightRule",
    ],
    "airflow.providers.standard.operators.empty": ["EmptyOperator"],
    "airflow.providers.standard.operators.python": [
        "PythonOperator",
        "BranchPythonOperator",
        "ShortCircuitOperator",
    ],
    "airflow.providers.standard.operators.bash": ["BashOperator"],
    "airflow.providers.standard.operators.trigger_dagrun": ["TriggerDagRunOperator"],
    "airflow.providers.standard.operators.latest_only": ["LatestOnlyOperator"],
    "airflow.providers.standard.operators.branch": ["BaseBranchOperator"],
    "airflow.providers.standard.sensors.python": ["PythonSensor"],
    "airflow.providers.standard.sensors.bash": ["BashSensor"],
    "airflow.providers.standard.sensors.filesystem": ["FileSensor"],
    "airflow.providers.standard.sensors.time_delta": ["TimeDeltaSensor"],
    "airflow.providers.standard.sensors.date_time": ["DateTimeSensor"],
    "airflow.providers.standard.sensors.time": ["TimeSensor"],
    "airflow.providers.standard.sensors.external_task": ["ExternalTaskSensor", "ExternalTaskMarker"],
    "airflow.providers.standard.triggers.temporal": ["DateTimeTrigger"],
    "airflow.providers.standard.hooks.subprocess": [
        "SubprocessHook",
        "SubprocessResult",
        "working_directory",
    ],
    # apache-airflow-providers-common-compat, as the standard provider's example DAGs import it
    "airflow.providers.common.compat.sdk": [
        "BaseOperator",
        "BaseSensorOperator",
        "BaseHook",
        "Context",
        "TriggerRule",
        "DAG",
        "dag",
        "task",
        "Variable",
        "Connection",
        "Param",
        "chain",
        "conf",
        "timezone",
        "get_current_context",
        "poke_mode_only",
        "task_decorator_factory",
        "DecoratedOperator",
        "AirflowException",
        "AirflowSkipException",
        "AirflowOptionalProviderFeatureException",
        "TaskDeferred",
    ],
    "airflow.providers.common.compat.assets": ["Asset", "AssetAlias", "AssetAll", "AssetAny"],
    "airflow.providers.common.compat.standard.operators": [
        "BaseOperator",
        "PythonOperator",
        "ShortCircuitOperator",
        "get_current_context",
    ],
    "airflow.providers.common.compat.standard.triggers": ["TimeDeltaTrigger"],
    "airflow.plugins_manager": ["AirflowPlugin"],
}


@pytest.mark.parametrize(("path", "names"), sorted(PATHS.items()))
def test_import_path_provides_names(path, names):
    module = importlib.import_module(path)
    for name in names:
        assert getattr(module, name) is not None, f"{path}.{name}"


def test_every_module_of_the_layer_imports():
    import airflow

    modules = [info.name for info in pkgutil.walk_packages(airflow.__path__, "airflow.")]
    assert len(modules) > 100
    for name in modules:
        importlib.import_module(name)


def test_the_layer_is_the_one_on_sys_path_and_says_a_compatible_version():
    import airflow

    assert "workers/compat/airflow" in airflow.__file__
    assert airflow.__version__.startswith("2.")


def test_airflow2_paths_give_airflow2_semantics_and_airflow_sdk_airflow3():
    from airflow import DAG as TopDAG
    from airflow.decorators import dag as decorators_dag
    from airflow.models import DAG as ModelsDAG
    from airflow.sdk import DAG as SdkDAG
    from airflow.sdk import dag as sdk_dag

    assert TopDAG is ModelsDAG is Airflow2DAG
    assert SdkDAG is NativeDAG and sdk_dag is sdk.dag
    assert decorators_dag is sdk.airflow2_dag


def test_deprecated_aliases_are_the_same_objects():
    from airflow.hooks.base_hook import BaseHook as OldHook
    from airflow.operators.bash_operator import BashOperator as OldBash
    from airflow.operators.dummy import DummyOperator
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python_operator import PythonOperator as OldPython
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import BaseHook
    from airflow.sensors.base import BaseSensorOperator
    from airflow.sensors.base_sensor_operator import BaseSensorOperator as OldSensor

    assert issubclass(DummyOperator, EmptyOperator)
    assert OldBash is BashOperator and OldPython is PythonOperator
    assert OldHook is BaseHook and OldSensor is BaseSensorOperator


def test_exceptions_module_exports_every_sdk_exception():
    import airflow.exceptions

    from tradewind.sdk import exceptions

    for name, value in vars(exceptions).items():
        if isinstance(value, type) and issubclass(value, BaseException):
            assert getattr(airflow.exceptions, name) is value


def test_utility_behaviour():
    import datetime

    from airflow.configuration import conf
    from airflow.utils import timezone
    from airflow.utils.dates import days_ago
    from airflow.utils.state import DagRunState, State

    assert days_ago(1).hour == 0 and days_ago(1).tzinfo is not None
    assert timezone.datetime(2024, 1, 1).tzinfo is not None
    assert timezone.convert_to_utc(datetime.datetime(2024, 1, 1)).isoformat() == "2024-01-01T00:00:00+00:00"
    assert timezone.make_naive(timezone.datetime(2024, 1, 1, 12), "Europe/Paris").hour == 13
    assert str(DagRunState.SUCCESS) == "success" and State.FAILED == "failed"
    assert conf.get("core", "missing_option", fallback="x") == "x"
    assert conf.getboolean("core", "load_examples") is False
    assert not conf.has_option("core", "missing_option") and conf.has_option("core", "dags_folder")


def test_conf_options_come_from_airflow_environment_variables_first(monkeypatch):
    from airflow.configuration import conf

    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", "/bundles/acme/v3")
    monkeypatch.setenv("AIRFLOW__MY_TEAM__BATCH_SIZE", "500")
    assert conf.get("core", "dags_folder") == "/bundles/acme/v3"
    assert conf.getint("my_team", "batch_size") == 500 and conf.has_option("my_team", "batch_size")


def test_common_compat_gives_the_layers_own_objects():
    import airflow.sdk
    from airflow.providers.common.compat import sdk as compat_sdk
    from airflow.providers.common.compat.standard.operators import PythonOperator
    from airflow.providers.standard.operators.python import PythonOperator as StandardPythonOperator

    for name in compat_sdk.__all__:
        if hasattr(airflow.sdk, name):
            assert getattr(compat_sdk, name) is getattr(airflow.sdk, name), name
    assert PythonOperator is StandardPythonOperator


def test_a_plugin_class_declares_as_in_airflow_and_is_inert():
    from airflow.plugins_manager import AirflowPlugin, AirflowPluginException

    def shout(text: str) -> str:
        return text.upper()

    class MyPlugin(AirflowPlugin):
        name = "my_plugin"
        macros = [shout]

    MyPlugin.validate()
    MyPlugin.on_load()
    assert MyPlugin.macros == [shout] and AirflowPlugin.macros == []
    assert MyPlugin.timetables == MyPlugin.listeners == MyPlugin.flask_blueprints == []
    with pytest.raises(AirflowPluginException):
        AirflowPlugin.validate()


def test_paths_added_for_public_dag_files_give_the_layers_objects():
    import airflow
    import airflow.sdk
    from airflow.exceptions import AirflowException
    from airflow.hooks.subprocess import SubprocessHook
    from airflow.io.path import ObjectStoragePath
    from airflow.models import BaseOperatorLink
    from airflow.models.baseoperatorlink import BaseOperatorLink as ModelsLink
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.providers.standard.hooks.subprocess import SubprocessHook as StandardSubprocessHook
    from airflow.sdk.definitions.asset.decorators import asset
    from airflow.utils.dag_parsing_context import get_parsing_context

    assert airflow.AirflowException is AirflowException and airflow.version.version == airflow.__version__
    assert ModelsLink is BaseOperatorLink is airflow.sdk.BaseOperatorLink
    assert SubprocessHook is StandardSubprocessHook and asset is sdk.asset
    assert ObjectStoragePath is airflow.sdk.ObjectStoragePath is sdk.ObjectStoragePath
    assert airflow.sdk.get_parsing_context is get_parsing_context
    assert get_parsing_context() == (None, None) and get_parsing_context().dag_id is None
    assert TaskInstanceKey("d", "t", "r") == ("d", "t", "r", 1, -1)


def test_send_email_imports_and_fails_when_called():
    from airflow.exceptions import AirflowException
    from airflow.utils.email import send_email

    with pytest.raises(AirflowException, match="cannot send mail"):
        send_email("ops@example.com", "failed", "<p>boom</p>")
