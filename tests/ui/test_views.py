"""The DAG pages through Django's test client: what each role sees and may do, per-DAG grants, other
tenants' objects (404), and every write landing through the services."""

from __future__ import annotations

import io

import pytest
from django.test import Client

from scheduler import services
from scheduler.bundles import upload_bundle
from scheduler.models import Bundle, BundleVersion, Dag, DagRun, TaskInstance
from tenants.models import Membership
from tenants.roles import Role
from tests.factories import make_dag_version, make_run
from tests.ui.conftest import ACTOR, PIPELINE_DAG, params_dag, zip_of
from tradewind.accounts import grants

pytestmark = pytest.mark.django_db

QUERY_BOUND_LIST = 11  # session, membership, DAGs, tags, counts, runs, import errors...
QUERY_BOUND_DAG = 8  # whatever the number of runs and tasks


def page(tenant, path: str = "") -> str:
    return f"/t/{tenant.slug}/{path}"


def dag_page(dag: Dag, suffix: str = "") -> str:
    return page(dag.tenant, f"dags/{dag.dag_id}/{suffix}")


def run_page(run: DagRun, suffix: str = "") -> str:
    return dag_page(run.dag, f"runs/{run.run_id}/{suffix}")


def text(response) -> str:
    return response.content.decode()


# --- DAG list -------------------------------------------------------------------------------------------


def test_dag_list_shows_the_tenants_dags_with_their_recent_runs(browser_for, tenant, other_tenant, make_dag):
    dag = make_dag(tenant, "etl", tags=["finance"], description="Nightly ETL")
    make_dag(other_tenant, "foreign_dag")
    run = make_run(tenant, dag.active_version)
    response = browser_for(tenant, Role.VIEWER).get(page(tenant, "dags/"))
    assert response.status_code == 200
    body = text(response)
    assert "etl" in body and "Nightly ETL" in body and "finance" in body
    assert f'title="{run.run_id}: queued"' in body
    assert "foreign_dag" not in body


def test_dag_list_filters_by_search_tag_and_status(browser_for, tenant, make_dag):
    make_dag(tenant, "sales_daily", tags=["sales"])
    paused = make_dag(tenant, "hr_weekly", tags=["hr"])
    Dag.objects.filter(pk=paused.pk).update(is_paused=True)
    client = browser_for(tenant, Role.VIEWER)

    def listed(query: str) -> set[str]:
        body = text(client.get(page(tenant, f"dags/?{query}")))
        return {dag_id for dag_id in ("sales_daily", "hr_weekly") if f'data-dag-id="{dag_id}"' in body}

    assert listed("") == {"sales_daily", "hr_weekly"}
    assert listed("q=SALES") == {"sales_daily"}
    assert listed("tags=hr") == {"hr_weekly"}
    assert listed("status=paused") == {"hr_weekly"}
    assert listed("status=active") == {"sales_daily"}


def test_dag_list_warns_about_import_errors_of_the_active_version(browser_for, tenant):
    upload_bundle(
        tenant=tenant,
        actor=ACTOR,
        source=io.BytesIO(
            zip_of(
                {
                    "good.py": PIPELINE_DAG,
                    "broken.py": "from airflow import DAG\nraise ValueError('bad dag file')\n",
                }
            )
        ),
    )
    body = text(browser_for(tenant, Role.VIEWER).get(page(tenant, "dags/")))
    assert "1 DAG import error." in body
    assert f'href="/t/{tenant.slug}/import-errors/"' in body
    errors = text(browser_for(tenant, Role.VIEWER).get(page(tenant, "import-errors/")))
    assert "broken.py" in errors and "ValueError: bad dag file" in errors


def test_tenant_home_links_to_the_dag_list(browser_for, tenant):
    body = text(browser_for(tenant, Role.VIEWER).get(page(tenant)))
    assert f'href="/t/{tenant.slug}/dags/"' in body


# --- DAG page -------------------------------------------------------------------------------------------


def test_dag_page_shows_the_grid_docs_and_details(browser_for, tenant, make_dag):
    dag = make_dag(tenant, "etl", doc_md="# Title\n<script>alert(1)</script> **bold**")
    run = make_run(tenant, dag.active_version)
    response = browser_for(tenant, Role.VIEWER).get(dag_page(dag))
    assert response.status_code == 200
    body = text(response)
    assert 'data-testid="grid"' in body
    assert f'href="/t/{tenant.slug}/dags/etl/runs/{run.run_id}/tasks/start/"' in body  # a cell per task
    assert "grp" in body and "inner" in body
    assert "<h1>Title</h1>" in body and "<strong>bold</strong>" in body
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "▶ Trigger" not in body  # a viewer may not trigger


def test_another_tenants_dag_is_not_found(browser_for, tenant, other_tenant, make_dag):
    foreign = make_dag(other_tenant, "foreign_dag")
    run = make_run(other_tenant, foreign.active_version)
    client = browser_for(tenant, Role.ADMIN)
    assert client.get(page(tenant, "dags/foreign_dag/")).status_code == 404
    assert client.get(page(tenant, f"dags/foreign_dag/runs/{run.run_id}/")).status_code == 404
    assert client.post(page(tenant, "dags/foreign_dag/trigger/"), {"conf": "{}"}).status_code == 404
    assert client.post(page(tenant, "dags/foreign_dag/pause/"), {"is_paused": "true"}).status_code == 404
    assert client.get(page(other_tenant, "dags/foreign_dag/")).status_code == 404  # not a member there
    assert not DagRun.objects.filter(dag=foreign).exclude(pk=run.pk).exists()
    assert not Dag.objects.get(pk=foreign.pk).is_paused


def test_a_member_limited_to_granted_dags_sees_only_those(browser_for, make_member, tenant, make_dag):
    granted, hidden = make_dag(tenant, "granted_dag"), make_dag(tenant, "hidden_dag")
    user = make_member(tenant, Role.USER)
    membership = Membership.objects.get(user=user, tenant=tenant)
    grants.set_grants_only(tenant=tenant, actor=ACTOR, membership=membership, grants_only=True)
    grants.set_grant(tenant=tenant, actor=ACTOR, dag=granted, user=user, perms=["view_dag"])
    client = Client()
    client.force_login(user)
    body = text(client.get(page(tenant, "dags/")))
    assert 'data-dag-id="granted_dag"' in body and "hidden_dag" not in body
    assert client.get(dag_page(hidden)).status_code == 404
    assert client.get(dag_page(granted)).status_code == 200
    # seeing a DAG is not triggering it: the grant for that is trigger_dag
    assert client.post(dag_page(granted, "trigger/"), {"conf": "{}"}).status_code == 403
    assert not DagRun.objects.filter(dag=granted).exists()


# --- Trigger and pause ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "expected"), [(Role.VIEWER, 403), (Role.USER, 302)])
def test_trigger_needs_the_user_role(browser_for, tenant, make_dag, role, expected):
    dag = make_dag(tenant, "etl")
    client = browser_for(tenant, role)
    assert client.get(dag_page(dag, "trigger/")).status_code == (403 if role == Role.VIEWER else 200)
    response = client.post(dag_page(dag, "trigger/"), {"conf": '{"x": 1}'})
    assert response.status_code == expected
    assert DagRun.objects.filter(dag=dag).count() == (1 if expected == 302 else 0)


def test_trigger_creates_a_run_with_the_conf_and_opens_it(browser_for, tenant, make_dag):
    dag = make_dag(tenant, "etl")
    response = browser_for(tenant, Role.USER).post(
        dag_page(dag, "trigger/"),
        {"conf": '{"x": 1}', "run_id": "my_run", "note": "by hand", "logical_date": "2024-05-01T06:00"},
    )
    run = DagRun.objects.get(dag=dag)
    assert response.status_code == 302 and response["Location"] == run_page(run)
    assert (run.run_id, run.conf, run.note) == ("my_run", {"x": 1}, "by hand")
    assert run.logical_date.isoformat() == "2024-05-01T06:00:00+00:00"


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ('{"x": 1,}', "Conf is not valid JSON"),
        ("[1, 2]", "Conf must be a JSON object"),
        ('{"count": "many"}', "invalid conf for DAG"),
    ],
)
def test_a_bad_conf_is_refused_clearly_and_kept_in_the_form(browser_for, tenant, conf, message):
    dag = make_dag_version(tenant, params_dag("counted")).dag
    response = browser_for(tenant, Role.USER).post(dag_page(dag, "trigger/"), {"conf": conf})
    assert response.status_code == 400
    body = text(response)
    assert message in body and 'data-testid="trigger-error"' in body
    assert conf.replace('"', "&quot;") in body  # what the user typed is still there to fix
    assert not DagRun.objects.filter(dag=dag).exists()


def test_trigger_form_is_prefilled_with_the_params_defaults(browser_for, tenant):
    dag = make_dag_version(tenant, params_dag("counted")).dag
    body = text(browser_for(tenant, Role.USER).get(dag_page(dag, "trigger/")))
    assert "&quot;count&quot;: 3" in body


@pytest.mark.parametrize(("role", "expected"), [(Role.VIEWER, 403), (Role.USER, 302)])
def test_pause_needs_the_user_role(browser_for, tenant, make_dag, role, expected):
    dag = make_dag(tenant, "etl")
    response = browser_for(tenant, role).post(dag_page(dag, "pause/"), {"is_paused": "true"})
    assert response.status_code == expected
    assert Dag.objects.get(pk=dag.pk).is_paused is (expected == 302)


def test_pause_and_unpause_return_to_the_page_they_came_from(browser_for, tenant, make_dag):
    dag = make_dag(tenant, "etl")
    client = browser_for(tenant, Role.USER)
    response = client.post(dag_page(dag, "pause/"), {"is_paused": "true", "next": "/t/acme/dags/?q=etl"})
    assert response["Location"] == "/t/acme/dags/?q=etl"
    assert Dag.objects.get(pk=dag.pk).is_paused
    response = client.post(dag_page(dag, "pause/"), {"is_paused": "false", "next": "https://evil.example/"})
    assert response["Location"] == dag_page(dag)  # never off-site
    assert not Dag.objects.get(pk=dag.pk).is_paused


# --- Runs and task instances ------------------------------------------------------------------------------


def test_run_page_lists_task_instances_and_actions_by_role(browser_for, tenant, make_dag):
    dag = make_dag(tenant, "etl")
    run = make_run(tenant, dag.active_version, conf={"answer": 42})
    viewer = text(browser_for(tenant, Role.VIEWER).get(run_page(run)))
    assert 'data-testid="task-instances"' in viewer
    for task_id in ("start", "grp.inner", "fan", "end"):
        assert f'data-ti="{run.run_id}|{task_id}|-1"' in viewer
    assert "&quot;answer&quot;: 42" in viewer
    assert "Clear run" not in viewer and "Mark success" not in viewer
    user = text(browser_for(tenant, Role.USER).get(run_page(run)))
    assert "Clear run" in user and "Mark success" in user


def test_mark_and_clear_a_task_instance(browser_for, tenant, make_dag):
    dag = make_dag(tenant, "etl")
    run = make_run(tenant, dag.active_version)
    client = browser_for(tenant, Role.USER)
    response = client.post(run_page(run, "mark/"), {"task_id": "start", "map_index": "-1", "state": "failed"})
    assert response.status_code == 302
    start = TaskInstance.objects.get(dag_run=run, task_id="start")
    assert start.state == "failed"
    response = client.post(
        run_page(run, "clear/"), {"task_id": "start", "map_index": "-1", "downstream": "1"}
    )
    assert response.status_code == 302
    start.refresh_from_db()
    assert start.state == "none"
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages and messages[-1].startswith("Cleared")


def test_marking_a_task_instance_an_unknown_state_is_refused(browser_for, tenant, make_dag):
    dag = make_dag(tenant, "etl")
    run = make_run(tenant, dag.active_version)
    client = browser_for(tenant, Role.USER)
    response = client.post(run_page(run, "mark/"), {"task_id": "start", "state": "running"}, follow=True)
    assert "can be marked success or failed" in text(response)
    assert TaskInstance.objects.get(dag_run=run, task_id="start").state == "none"


def test_mark_a_whole_run(browser_for, tenant, make_dag):
    dag = make_dag(tenant, "etl")
    run = make_run(tenant, dag.active_version)
    browser_for(tenant, Role.USER).post(run_page(run, "mark/"), {"state": "success"})
    run.refresh_from_db()
    assert run.state == "success"


@pytest.mark.parametrize("path", ["clear/", "mark/"])
def test_viewers_may_not_clear_or_mark(browser_for, tenant, make_dag, path):
    dag = make_dag(tenant, "etl")
    run = make_run(tenant, dag.active_version)
    response = browser_for(tenant, Role.VIEWER).post(
        run_page(run, path), {"task_id": "start", "state": "success"}
    )
    assert response.status_code == 403
    assert TaskInstance.objects.get(dag_run=run, task_id="start").state == "none"


def test_task_instance_page_shows_its_tries_and_actions(browser_for, tenant, make_dag):
    dag = make_dag(tenant, "etl")
    run = make_run(tenant, dag.active_version)
    services.set_task_instance_state(
        tenant=tenant, actor=ACTOR, ti=TaskInstance.objects.get(dag_run=run, task_id="start"), state="success"
    )
    response = browser_for(tenant, Role.USER).get(run_page(run, "tasks/start/"))
    assert response.status_code == 200
    body = text(response)
    assert 'data-testid="ti-state">success<' in body
    assert "has not started yet" in body  # marked, never run: no try, no log
    assert 'data-testid="mark-failed-start"' in body
    assert browser_for(tenant, Role.VIEWER).get(run_page(run, "tasks/nope/")).status_code == 404
    assert browser_for(tenant, Role.VIEWER).get(run_page(run, "tasks/fan/7/")).status_code == 404


# --- DAG repositories -------------------------------------------------------------------------------------


def test_viewers_see_repositories_but_cannot_upload(browser_for, tenant):
    upload_bundle(tenant=tenant, actor=ACTOR, source=io.BytesIO(zip_of({"pipeline.py": PIPELINE_DAG})))
    client = browser_for(tenant, Role.VIEWER)
    body = text(client.get(page(tenant, "bundles/")))
    assert 'data-testid="versions-default"' in body and 'data-testid="upload-form"' not in body
    archive = io.BytesIO(zip_of({"pipeline.py": PIPELINE_DAG + "\n# changed\n"}))
    archive.name = "repo.zip"
    assert client.post(page(tenant, "bundles/"), {"archive": archive}).status_code == 403
    assert BundleVersion.objects.for_tenant(tenant).count() == 1


def test_op_uploads_validates_and_rolls_back(browser_for, tenant):
    client = browser_for(tenant, Role.OP)

    def post(files: dict[str, str], **extra: str):
        archive = io.BytesIO(zip_of(files))
        archive.name = "repo.zip"
        return client.post(page(tenant, "bundles/"), {"archive": archive, **extra}, follow=True)

    assert "Uploaded default v1: active (1 DAG)." in text(post({"pipeline.py": PIPELINE_DAG}))
    changed = PIPELINE_DAG.replace('"hello"', '"bonjour"')
    assert "Validated default v2 without activating it" in text(post({"p.py": changed}, validate_only="1"))
    bundle = Bundle.objects.for_tenant(tenant).get()
    assert bundle.active_version.number == 1
    response = client.post(page(tenant, "bundles/default/versions/2/activate/"), follow=True)
    assert "Activated default version 2." in text(response)
    response = client.post(page(tenant, "bundles/default/versions/1/activate/"), follow=True)
    assert "Rolled default back to version 1." in text(response)
    bundle.refresh_from_db()
    assert bundle.active_version.number == 1


def test_a_hostile_archive_is_rejected_with_its_reason(browser_for, tenant):
    archive = io.BytesIO(zip_of({"../escape.py": "x = 1\n"}))
    archive.name = "evil.zip"
    response = browser_for(tenant, Role.OP).post(page(tenant, "bundles/"), {"archive": archive})
    assert response.status_code == 400
    body = text(response)
    assert "Upload rejected:" in body and "escape.py" in body
    assert not BundleVersion.objects.for_tenant(tenant).exists()


def test_another_tenants_bundle_version_cannot_be_activated(browser_for, tenant, other_tenant):
    upload_bundle(tenant=other_tenant, actor=ACTOR, source=io.BytesIO(zip_of({"pipeline.py": PIPELINE_DAG})))
    response = browser_for(tenant, Role.ADMIN).post(page(tenant, "bundles/default/versions/1/activate/"))
    assert response.status_code == 404
    assert "default v1" not in text(browser_for(tenant, Role.ADMIN).get(page(tenant, "bundles/")))


# --- Query bounds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dag_count", [2, 6])
def test_the_dag_list_takes_a_fixed_number_of_queries(
    browser_for, tenant, make_dag, django_assert_max_num_queries, dag_count
):
    for n in range(dag_count):
        dag = make_dag(tenant, f"dag_{n}")
        make_run(tenant, dag.active_version)
        make_run(tenant, dag.active_version)
    client = browser_for(tenant, Role.USER)
    with django_assert_max_num_queries(QUERY_BOUND_LIST):
        assert client.get(page(tenant, "dags/")).status_code == 200


@pytest.mark.parametrize("run_count", [1, 5])
def test_the_dag_page_takes_a_fixed_number_of_queries(
    browser_for, tenant, make_dag, django_assert_max_num_queries, run_count
):
    dag = make_dag(tenant, "etl")
    for _ in range(run_count):
        make_run(tenant, dag.active_version)
    client = browser_for(tenant, Role.USER)
    with django_assert_max_num_queries(QUERY_BOUND_DAG):
        assert client.get(dag_page(dag)).status_code == 200
