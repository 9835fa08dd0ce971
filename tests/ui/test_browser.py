"""The DAG pages in a real browser (headless Chromium through Selenium) against a live server, with the
scheduler running real tasks in the sandbox: what a user clicks through, end to end."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from scheduler.models import BundleVersion, Dag, DagRun
from tenants.roles import Role
from tests.ui.conftest import PASSWORD, PIPELINE_DAG, absent, scheduler_running, zip_of

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def log_in(browser, live_server, user) -> None:
    browser.get(f"{live_server.url}/login/")
    browser.find_element(By.ID, "id_username").send_keys(user.username)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(browser, 10).until(ec.title_contains("Your tenants"))


def wait_for_text(browser, selector: str, expected: str, timeout: float = 60) -> None:
    WebDriverWait(browser, timeout).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, selector), expected)
    )


def test_trigger_a_dag_watch_the_run_finish_and_read_the_log(
    browser, live_server, tenant, make_member, upload_pipeline
):
    upload_pipeline(tenant)
    log_in(browser, live_server, make_member(tenant, Role.USER))

    # the DAG list, from the tenant's home page
    browser.get(f"{live_server.url}/t/{tenant.slug}/")
    browser.find_element(By.LINK_TEXT, "Open the DAGs →").click()
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-dag-id="ui_pipeline"]')
    assert "ui" in row.text and "None" in row.text and "no runs yet" in row.text

    # the DAG page: its docs and its (empty) grid
    row.find_element(By.LINK_TEXT, "ui_pipeline").click()
    assert browser.find_element(By.CSS_SELECTOR, ".markdown h1").text == "UI pipeline"
    assert "No runs yet." in browser.page_source

    # trigger with a broken conf: the error is shown and the text kept
    browser.find_element(By.CSS_SELECTOR, '[data-testid="trigger"]').click()
    conf = browser.find_element(By.ID, "id_conf")
    assert '"greeting": "hello"' in conf.get_attribute("value")
    conf.clear()
    conf.send_keys('{"greeting": "bonjour",}')
    browser.find_element(By.CSS_SELECTOR, "[data-testid=trigger-form] button[type=submit]").click()
    error = browser.find_element(By.CSS_SELECTOR, '[data-testid="trigger-error"]')
    assert "Conf is not valid JSON" in error.text
    assert not DagRun.objects.exists()

    # a good conf triggers the run and opens its page, which follows it until it is done
    conf = browser.find_element(By.ID, "id_conf")
    conf.clear()
    conf.send_keys('{"greeting": "bonjour"}')
    browser.find_element(By.CSS_SELECTOR, "[data-testid=trigger-form] button[type=submit]").click()
    assert "Triggered ui_pipeline" in browser.find_element(By.CSS_SELECTOR, ".messages").text
    run = DagRun.objects.get()
    assert run.conf == {"greeting": "bonjour"}
    with scheduler_running(tenant):
        wait_for_text(browser, '[data-testid="run-state"]', "success")  # no reload: the page refreshes itself
        wait_for_text(browser, '[data-ti$="|done|-1"] .state', "success")

    # the task's log, read by the log viewer
    browser.find_element(By.LINK_TEXT, "hello").click()
    assert browser.find_element(By.CSS_SELECTOR, '[data-testid="ti-state"]').text == "success"
    wait_for_text(browser, '[data-testid="log"]', "greeting=bonjour", timeout=20)
    WebDriverWait(browser, 10).until(
        lambda b: b.find_element(By.CSS_SELECTOR, ".log-viewer").get_attribute("data-finished") == "true"
    )

    # and the grid on the DAG page shows the finished run
    browser.get(f"{live_server.url}/t/{tenant.slug}/dags/ui_pipeline/")
    cells = browser.find_elements(By.CSS_SELECTOR, '[data-testid="grid"] tbody .sq.state-success')
    assert len(cells) == 2


def test_pause_and_unpause_from_the_dag_list_and_page(browser, live_server, tenant, make_member, make_dag):
    dag = make_dag(tenant, "etl")
    log_in(browser, live_server, make_member(tenant, Role.USER))
    browser.get(f"{live_server.url}/t/{tenant.slug}/dags/")
    browser.find_element(By.CSS_SELECTOR, '[data-testid="pause-etl"]').click()
    assert "etl is paused." in browser.find_element(By.CSS_SELECTOR, ".messages").text
    assert browser.current_url.endswith(f"/t/{tenant.slug}/dags/")
    assert Dag.objects.get(pk=dag.pk).is_paused
    toggle = browser.find_element(By.CSS_SELECTOR, '[data-testid="pause-etl"]')
    assert toggle.get_attribute("aria-checked") == "false"

    browser.get(f"{live_server.url}/t/{tenant.slug}/dags/etl/")
    assert "Paused" in browser.find_element(By.CSS_SELECTOR, ".facts").text
    browser.find_element(By.CSS_SELECTOR, '[data-testid="pause-etl"]').click()
    assert "running on its schedule" in browser.find_element(By.CSS_SELECTOR, ".messages").text
    assert not Dag.objects.get(pk=dag.pk).is_paused
    assert "Active" in browser.find_element(By.CSS_SELECTOR, ".facts").text


def test_a_viewer_sees_no_trigger_button_and_a_post_is_refused(
    browser, live_server, tenant, make_member, make_dag
):
    make_dag(tenant, "etl")
    log_in(browser, live_server, make_member(tenant, Role.VIEWER))
    browser.get(f"{live_server.url}/t/{tenant.slug}/dags/etl/")
    assert browser.find_element(By.CSS_SELECTOR, ".toggle.readonly")  # the switch shows, read-only
    assert absent(browser, '[data-testid="trigger"]') and absent(browser, '[data-testid="pause-etl"]')
    status = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const token = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
        fetch("trigger/", {method: "POST", credentials: "same-origin",
                           headers: {"X-CSRFToken": token ? token.split("=")[1] : ""},
                           body: new URLSearchParams({conf: "{}"})})
          .then((r) => done(r.status), () => done(-1));
        """
    )
    assert status == 403
    assert not DagRun.objects.exists()
    browser.get(f"{live_server.url}/t/{tenant.slug}/dags/etl/trigger/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not allowed"


def test_another_tenants_dag_is_a_not_found_page(
    browser, live_server, tenant, other_tenant, make_member, make_dag
):
    make_dag(other_tenant, "foreign_dag")
    log_in(browser, live_server, make_member(tenant, Role.ADMIN))
    for path in (f"/t/{tenant.slug}/dags/foreign_dag/", f"/t/{other_tenant.slug}/dags/foreign_dag/"):
        browser.get(f"{live_server.url}{path}")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
        assert "foreign_dag" not in browser.find_element(By.TAG_NAME, "main").text


def test_upload_a_bundle_through_the_form(browser, live_server, tenant, make_member):
    log_in(browser, live_server, make_member(tenant, Role.OP))
    folder = Path(tempfile.mkdtemp(prefix="tw-ui-upload-"))
    good, hostile = folder / "repo.zip", folder / "hostile.zip"
    good.write_bytes(zip_of({"pipeline.py": PIPELINE_DAG}))
    hostile.write_bytes(zip_of({"../../escape.py": "x = 1\n"}))

    browser.get(f"{live_server.url}/t/{tenant.slug}/bundles/")
    browser.find_element(By.ID, "id_archive").send_keys(str(hostile))
    browser.find_element(By.CSS_SELECTOR, "[data-testid=upload-form] button[type=submit]").click()
    error = browser.find_element(By.CSS_SELECTOR, '[data-testid="upload-error"]')
    assert error.text.startswith("Upload rejected:") and "escape.py" in error.text
    assert not BundleVersion.objects.exists()

    browser.find_element(By.ID, "id_archive").send_keys(str(good))
    browser.find_element(By.CSS_SELECTOR, "[data-testid=upload-form] button[type=submit]").click()
    assert "Uploaded default v1: active (1 DAG)." in browser.find_element(By.CSS_SELECTOR, ".messages").text
    versions = browser.find_element(By.CSS_SELECTOR, '[data-testid="versions-default"]')
    assert "v1" in versions.text and "active" in versions.text

    browser.find_element(By.LINK_TEXT, "DAGs").click()
    assert browser.find_element(By.CSS_SELECTOR, 'tr[data-dag-id="ui_pipeline"]')
