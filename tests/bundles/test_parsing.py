"""Which files are DAG files, the parse cache, import errors per file, DAG versions and Dag rows."""

from __future__ import annotations

import shutil
import time

import pytest

import workers.sandbox
from scheduler import dagparsing
from scheduler.bundles import upload_bundle
from scheduler.dagparsing import find_dag_files
from scheduler.models import Asset, Dag, DagVersion, ParsedFile, ParseImportError
from tenants import services
from tradewind.errors import Invalid

from .conftest import ACTOR, DAGS, NO_ROWS, dag_source, rows_of, stored_files, write_tree

AIRFLOW_DAG = "from airflow import DAG\n"
NATIVE_DAG = "from tradewind.sdk import DAG\n"


@pytest.fixture
def sandbox_calls(monkeypatch) -> list[str]:
    """The files handed to the real sandbox, in order (a spy: the real parse still runs)."""
    calls: list[str] = []
    real = workers.sandbox.parse_files

    def spy(root, files, **kwargs):
        calls.extend(files)
        return real(root, files, **kwargs)

    monkeypatch.setattr(dagparsing.sandbox, "parse_files", spy)
    return calls


# --- Discovery ----------------------------------------------------------------------------------------------


def test_dag_files_are_found_by_airflows_safe_mode_heuristic(tmp_path):
    write_tree(
        tmp_path,
        {
            "airflow_dag.py": AIRFLOW_DAG,
            "upper_case.py": "import AIRFLOW  # my Dag\n",
            "native.py": NATIVE_DAG,
            "helper.py": "def dag_helper():\n    return 1\n",  # "dag" but neither "airflow" nor "tradewind"
            "mentions_airflow_only.py": "import airflow\n",
            "assets_only.py": "from airflow.sdk import asset\n",  # Airflow 3: "asset" instead of "dag"
            "notes.txt": "airflow dag",
            "sub/deeper/nested.py": AIRFLOW_DAG,
        },
    )
    assert find_dag_files(tmp_path, _all(tmp_path)) == [
        "airflow_dag.py",
        "assets_only.py",
        "native.py",
        "sub/deeper/nested.py",
        "upper_case.py",
    ]


def test_airflowignore_regexp_syntax(tmp_path, settings):
    settings.TRADEWIND_DAG_IGNORE_FILE_SYNTAX = "regexp"
    write_tree(
        tmp_path,
        {
            ".airflowignore": "project_a\ntenant_[\\d]  # a comment\n# project_b\n*.tmp.py\n",
            "project_a_dag_1.py": AIRFLOW_DAG,
            "TESTING_project_a.py": AIRFLOW_DAG,
            "tenant_1.py": AIRFLOW_DAG,
            "project_a/dag_1.py": AIRFLOW_DAG,
            "tenant_1/dag_1.py": AIRFLOW_DAG,
            "project_b.py": AIRFLOW_DAG,
            "scratch.tmp.py": AIRFLOW_DAG,  # "*.tmp.py" is no regular expression: read as a glob
            "keep.py": AIRFLOW_DAG,
            "sub/.airflowignore": "^local",
            "sub/local_dag.py": AIRFLOW_DAG,
            "sub/other.py": AIRFLOW_DAG,
            "local_at_top.py": AIRFLOW_DAG,  # the sub-directory's rules do not reach its parent
        },
    )
    assert find_dag_files(tmp_path, _all(tmp_path)) == [
        "keep.py",
        "local_at_top.py",
        "project_b.py",
        "sub/other.py",
    ]


def test_airflowignore_glob_syntax(tmp_path, settings):
    settings.TRADEWIND_DAG_IGNORE_FILE_SYNTAX = "glob"
    write_tree(
        tmp_path,
        {
            ".airflowignore": "*_test.py\n/generated/\n**/scratch/**\nbuild/\n!build/keep.py\nexact.py\n",
            "dag_test.py": AIRFLOW_DAG,
            "sub/other_test.py": AIRFLOW_DAG,
            "generated/g.py": AIRFLOW_DAG,
            "sub/generated/kept.py": AIRFLOW_DAG,  # "/generated/" is anchored at the ignore file's directory
            "a/b/scratch/s.py": AIRFLOW_DAG,
            "build/keep.py": AIRFLOW_DAG,  # git semantics: nothing inside an ignored directory comes back
            "sub/exact.py": AIRFLOW_DAG,  # no slash: matches at any depth
            "exact_not.py": AIRFLOW_DAG,
            "dags/.airflowignore": "*\n!wanted.py\n",
            "dags/wanted.py": AIRFLOW_DAG,
            "dags/unwanted.py": AIRFLOW_DAG,
            "main.py": AIRFLOW_DAG,
        },
    )
    assert find_dag_files(tmp_path, _all(tmp_path)) == [
        "dags/wanted.py",
        "exact_not.py",
        "main.py",
        "sub/generated/kept.py",
    ]


def _all(root) -> list[str]:
    return [str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()]


# --- Import errors ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_bad_file_gets_its_own_clear_import_error(tenant, settings, tmp_path):
    settings.TRADEWIND_PARSE_TIMEOUT = 3
    settings.TRADEWIND_PARSE_MEMORY_MB = 512
    shutil.copytree(DAGS / "broken", tmp_path / "broken")
    # Written here rather than kept in the repository, where linters would choke on it.
    write_tree(
        tmp_path / "broken", {"syntax_error.py": "from airflow import DAG\n\n\ndef broken(:\n    pass\n"}
    )
    started = time.monotonic()
    result = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path / "broken")
    assert time.monotonic() - started < 30
    assert result.dags == ["good"]
    errors = result.import_errors
    assert sorted(errors) == [
        "calls_sys_exit.py",
        "cycle.py",
        "duplicate_task_ids.py",
        "loop_forever.py",
        "memory_bomb.py",
        "missing_import.py",
        "syntax_error.py",
    ]
    assert errors["syntax_error.py"].startswith("SyntaxError while importing syntax_error.py")
    assert 'File "syntax_error.py", line 4' in errors["syntax_error.py"]
    assert errors["missing_import.py"].startswith(
        "ModuleNotFoundError while importing missing_import.py: No module named 'tradewind_no_such_module_anywhere'"
    )
    assert errors["loop_forever.py"].startswith("timed out after 3 s while importing loop_forever.py")
    assert errors["memory_bomb.py"].startswith("MemoryError while importing memory_bomb.py: out of memory")
    assert errors["calls_sys_exit.py"].startswith("sys.exit(3) was called while importing calls_sys_exit.py")
    assert "cycle" in errors["cycle.py"].lower() and "AirflowDagCycleException" in errors["cycle.py"]
    assert "DuplicateTaskIdFound" in errors["duplicate_task_ids.py"]
    assert "same" in errors["duplicate_task_ids.py"]
    stored = dict(
        ParseImportError.objects.for_tenant(tenant)
        .filter(bundle_version=result.version)
        .values_list("filename", "message")
    )
    assert stored == errors
    assert result.version.import_error_count == 7
    good = Dag.objects.for_tenant(tenant).get(dag_id="good")
    assert good.is_active and good.active_version.serialized["dag_id"] == "good"


@pytest.mark.django_db
def test_duplicate_dag_id_in_two_files_is_an_error_of_the_second(tenant, tmp_path):
    write_tree(tmp_path, {"a.py": dag_source("shared"), "b.py": dag_source("shared", tasks=3)})
    result = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    assert result.dags == ["shared"]
    assert result.import_errors == {"b.py": "DAG 'shared' is already defined in a.py"}
    dag = Dag.objects.for_tenant(tenant).get(dag_id="shared")
    assert dag.fileloc == "a.py"
    assert len(dag.active_version.serialized["tasks"]) == 2
    # The file that owns the DAG keeps it, even when a file earlier in the alphabet starts defining it too.
    write_tree(tmp_path, {"0_new.py": dag_source("shared", tasks=5)})
    result = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    assert result.import_errors == {
        "0_new.py": "DAG 'shared' is already defined in a.py",
        "b.py": "DAG 'shared' is already defined in a.py",
    }
    assert Dag.objects.for_tenant(tenant).get(dag_id="shared").fileloc == "a.py"


@pytest.mark.django_db
def test_more_dags_than_the_tenant_may_have_is_refused(bundle_store, tmp_path, db):
    small = services.create_tenant(slug="small", max_dags=2)
    write_tree(tmp_path, {f"d{i}.py": dag_source(f"d{i}") for i in range(3)})
    with pytest.raises(Invalid, match="the bundle defines 3 DAGs, above the tenant's limit of 2 DAGs"):
        upload_bundle(tenant=small, actor=ACTOR, source=tmp_path)
    assert rows_of(small) == NO_ROWS
    assert stored_files(bundle_store) == []
    # DAGs of the tenant's other bundles count too.
    write_tree(tmp_path / "other", {"o.py": dag_source("o")})
    upload_bundle(tenant=small, actor=ACTOR, source=tmp_path / "other", bundle_name="other")
    (tmp_path / "d2.py").unlink()
    shutil.rmtree(tmp_path / "other")
    with pytest.raises(Invalid, match="with the 1 DAGs of the tenant's other bundles that is above"):
        upload_bundle(tenant=small, actor=ACTOR, source=tmp_path)


# --- The parse cache and DAG versions -----------------------------------------------------------------------


@pytest.mark.django_db
def test_unchanged_files_are_not_parsed_again(tenant, tmp_path, sandbox_calls):
    write_tree(tmp_path, {"a.py": dag_source("a"), "b.py": dag_source("b"), "c.py": dag_source("c")})
    first = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    assert sorted(sandbox_calls) == ["a.py", "b.py", "c.py"]
    assert first.timings["parsed_files"] == 3
    assert ParsedFile.objects.for_tenant(tenant).count() == 3

    sandbox_calls.clear()
    write_tree(tmp_path, {"b.py": dag_source("b", tasks=4)})
    second = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    assert sandbox_calls == ["b.py"]
    assert second.dags == ["a", "b", "c"]
    assert second.timings["parsed_files"] == 1


@pytest.mark.django_db
def test_a_changed_support_file_makes_every_dag_file_parse_again(tenant, tmp_path, sandbox_calls):
    write_tree(
        tmp_path,
        {
            "common/helpers.py": "TASKS = 2\n",
            "a.py": dag_source("a", extra="from common.helpers import TASKS\n"),
            "b.py": dag_source("b"),
        },
    )
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    sandbox_calls.clear()
    write_tree(tmp_path, {"common/helpers.py": "TASKS = 3\n"})
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    assert sorted(sandbox_calls) == ["a.py", "b.py"]


@pytest.mark.django_db
def test_a_new_dag_version_only_when_the_serialization_changes(tenant, tmp_path):
    write_tree(tmp_path, {"a.py": dag_source("a"), "b.py": dag_source("b"), "README.md": "v1"})
    v1 = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path).version
    write_tree(tmp_path, {"b.py": dag_source("b", tasks=3)})  # unrelated to DAG a
    v2 = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path).version
    assert v2.number == 2
    a, b = (Dag.objects.for_tenant(tenant).get(dag_id=dag_id) for dag_id in "ab")
    assert a.versions.count() == 1
    assert b.versions.count() == 2
    assert a.active_version.number == 1 and b.active_version.number == 2
    # DAG a's unchanged version now runs the files of the active bundle version.
    assert a.active_version.bundle_version == v2
    assert v1.dags["a"]["version"] == v2.dags["a"]["version"]

    write_tree(tmp_path, {"README.md": "v3: only a support file changed"})
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    assert DagVersion.objects.for_tenant(tenant).count() == 3

    write_tree(tmp_path, {"a.py": dag_source("a", tags=["changed"])})
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    a.refresh_from_db()
    assert a.versions.count() == 2
    assert a.active_version.number == 2
    assert a.tags == ["changed"]


@pytest.mark.django_db
def test_dag_rows_take_their_fields_from_the_serialization(tenant, tmp_path):
    write_tree(
        tmp_path,
        {
            "listed.py": dag_source(
                "listed",
                description="Loads the warehouse",
                tags=["etl", "daily"],
                max_active_runs=3,
                max_active_tasks=7,
                default_args={"owner": "data-team"},
            ),
            "paused.py": dag_source("paused", is_paused_upon_creation=True),
        },
    )
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    listed = Dag.objects.for_tenant(tenant).get(dag_id="listed")
    assert listed.description == "Loads the warehouse"
    assert listed.tags == ["daily", "etl"]
    assert listed.owners == "data-team"
    assert (listed.max_active_runs, listed.max_active_tasks) == (3, 7)
    assert listed.schedule == listed.active_version.serialized["schedule"]
    assert listed.fileloc == "listed.py" and listed.is_active and not listed.is_paused
    assert Dag.objects.for_tenant(tenant).get(dag_id="paused").is_paused


@pytest.mark.django_db
def test_pause_new_dags_pauses_only_new_ones(tenant, tmp_path):
    write_tree(tmp_path, {"old.py": dag_source("old")})
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    write_tree(tmp_path, {"new.py": dag_source("new")})
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path, pause_new_dags=True)
    paused = dict(Dag.objects.for_tenant(tenant).values_list("dag_id", "is_paused"))
    assert paused == {"old": False, "new": True}


@pytest.mark.django_db(transaction=True)
def test_top_level_variable_get_is_answered_and_not_cached(tenant, tmp_path, sandbox_calls):
    from tradewind.secrets import services as secrets

    secrets.set_variable(tenant=tenant, actor=ACTOR, key="task_count", value="3")
    write_tree(
        tmp_path,
        {
            "from_variable.py": dag_source("from_variable")
            .replace("for i in range(2)", "for i in range(int(Variable.get('task_count')))")
            .replace("import pendulum\n", "import pendulum\nfrom tradewind.sdk import Variable\n"),
            "plain.py": dag_source("plain"),
        },
    )
    first = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    assert first.import_errors == {}
    dag = Dag.objects.for_tenant(tenant).get(dag_id="from_variable")
    assert len(dag.active_version.serialized["tasks"]) == 3

    secrets.set_variable(tenant=tenant, actor=ACTOR, key="task_count", value="4")
    sandbox_calls.clear()
    write_tree(tmp_path, {"notes.txt": "a change, so that the upload is a new version"})
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    dag.refresh_from_db()
    assert len(dag.active_version.serialized["tasks"]) == 4
    # notes.txt is a support file, so both files parse again; the next upload shows what is cached.
    sandbox_calls.clear()
    write_tree(tmp_path, {"plain.py": dag_source("plain") + "# touched\n"})
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    assert sorted(sandbox_calls) == ["from_variable.py", "plain.py"]


@pytest.mark.django_db(transaction=True)
def test_missing_variable_at_top_level_is_an_import_error(tenant, tmp_path):
    source = dag_source("needs_variable").replace(
        "import pendulum\n", "import pendulum\nfrom tradewind.sdk import Variable\nVariable.get('nope')\n"
    )
    write_tree(tmp_path, {"needs_variable.py": source})
    result = upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    assert result.dags == []
    assert "nope" in result.import_errors["needs_variable.py"]


@pytest.mark.django_db
def test_assets_a_dag_declares_are_stored_with_its_version(tenant, tmp_path):
    write_tree(
        tmp_path,
        {
            "assets.py": """
                import pendulum
                from airflow.sdk import DAG, Asset, AssetAlias
                from airflow.providers.standard.operators.empty import EmptyOperator

                raw = Asset(name="raw", uri="s3://lake/raw.csv", extra={"owner": "ingest"})
                with DAG("consumer", schedule=raw | Asset("s3://lake/other"), start_date=pendulum.datetime(2024, 1, 1)):
                    EmptyOperator(
                        task_id="produce",
                        inlets=[Asset.ref(name="elsewhere")],
                        outlets=[Asset("report", group="reports"), AssetAlias("dynamic")],
                    )
            """,
        },
    )
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    stored = {a.uri: (a.name, a.group, a.extra) for a in Asset.objects.for_tenant(tenant)}
    # Aliases and refs name no asset of their own: only the three assets are stored.
    assert stored == {
        "s3://lake/raw.csv": ("raw", "asset", {"owner": "ingest"}),
        "s3://lake/other": ("s3://lake/other", "asset", {}),
        "report": ("report", "reports", {}),
    }

    # A new version of the DAG brings a stored asset up to its declaration.
    source = (tmp_path / "assets.py").read_text().replace('{"owner": "ingest"}', '{"owner": "platform"}')
    write_tree(tmp_path, {"assets.py": source})
    upload_bundle(tenant=tenant, actor=ACTOR, source=tmp_path)
    assert Asset.objects.for_tenant(tenant).get(uri="s3://lake/raw.csv").extra == {"owner": "platform"}
    assert Asset.objects.for_tenant(tenant).count() == 3
