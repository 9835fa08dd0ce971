"""Masking: Airflow's masker semantics, and a real task's stored log holding only `***` for secrets."""

from __future__ import annotations

import json
import os
import textwrap
from urllib.parse import quote, quote_plus

import pytest
from django.utils import timezone

from scheduler.models import Dag, TaskInstance
from scheduler.states import RunType, TIState
from tradewind.accounts.actors import Actor
from tradewind.audit.models import AuditEntry
from tradewind.secrets import services
from tradewind.secrets.masking import Masker

ACTOR = Actor.system("tests")


def test_registered_secrets_and_their_encodings_are_masked():
    masker = Masker()
    masker.add("p@ss word/1")
    text = 'raw=p@ss word/1 url=p%40ss%20word%2F1 form=p%40ss+word%2F1 json="p@ss word/1"'
    assert masker.mask(text) == 'raw=*** url=*** form=*** json="***"'
    assert masker.mask_bytes(text.encode()) == masker.mask(text).encode()


def test_short_and_trivial_values_are_ignored(settings):
    masker = Masker()
    for value in ("abc", "", None, "true", "None", "   x  "):
        masker.add(value)
    assert not masker
    assert masker.mask("abc true None") == "abc true None"
    settings.TRADEWIND_MASK_MIN_LENGTH = 3
    masker.add("abc")
    assert masker.mask("xabcx") == "x***x"


def test_longest_secret_wins_and_multiline_secrets_are_masked_by_line():
    masker = Masker()
    masker.add("secret-one")
    masker.add("secret-one-and-more")
    masker.add("-----BEGIN KEY-----\nMIIBVgIBADANBg\n-----END KEY-----")
    assert masker.mask("a secret-one-and-more b secret-one") == "a *** b ***"
    assert "MIIBVgIBADANBg" not in masker.mask("line: MIIBVgIBADANBg")


def test_connections_mask_password_and_every_extra_value():
    masker = Masker()
    masker.add_connection(
        {"password": "hunter22", "extra": json.dumps({"region": "us-east-1", "key": {"id": "AKIA123"}})}
    )
    assert masker.mask("hunter22 us-east-1 AKIA123 other") == "*** *** *** other"


def test_variables_mask_only_sensitive_keys():
    masker = Masker()
    masker.add_variable("region", "eu-central-1")
    masker.add_variable("db_password", "pw-value-1")
    masker.add_variable("service_token", json.dumps({"inner": "inner-secret"}))
    assert masker.mask("eu-central-1 pw-value-1 inner-secret") == "eu-central-1 *** ***"


def test_structures_are_masked_by_key_and_by_value():
    masker = Masker()
    masker.add("known-secret")
    value = {
        "Authorization": "Bearer abc",
        "nested": [{"api_key": 1234567}, "has known-secret inside"],
        "n": 5,
    }
    assert masker.mask_structure(value) == {
        "Authorization": "***",
        "nested": [{"api_key": "***"}, "has *** inside"],
        "n": 5,
    }


# A real task, run by the real runner in the real sandbox: its stored log must hold no secret.


DAG_FILE = """
from datetime import datetime
from airflow import DAG
from airflow.hooks.base import BaseHook
from airflow.models import Variable
from airflow.operators.python import PythonOperator
from airflow.operators.bash import BashOperator

def leak():
    conn = BaseHook.get_connection("warehouse")
    token = Variable.get("partner_api_token")
    print("password:", conn.password)
    print("in a url:", conn.get_uri())
    print("extra:", conn.extra_dejson["aws_secret"])
    print("token:", token, "region:", Variable.get("region"))
    raise ValueError("cannot log in with " + conn.password)

with DAG("leaky", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    PythonOperator(task_id="leak", python_callable=leak)
    BashOperator(task_id="templated", bash_command="echo {{ var.value.partner_api_token }} {{ conn.warehouse.password }}")
"""


@pytest.mark.django_db(transaction=True)
def test_a_task_printing_secrets_leaves_only_stars_in_its_stored_log(tenant, storage):
    from scheduler import services as engine
    from scheduler.bundles import upload_bundle
    from workers import runner
    from workers.logs import get_log_store

    password, aws_secret, token = "Warehouse-Pw-42", "aws/Secret+Key=9", "ptk_abcdef123456"
    services.set_connection(
        tenant=tenant,
        actor=ACTOR,
        fields={
            "conn_id": "warehouse",
            "conn_type": "postgres",
            "host": "db",
            "login": "etl",
            "password": password,
            "extra": json.dumps({"aws_secret": aws_secret}),
        },
    )
    services.set_variable(tenant=tenant, actor=ACTOR, key="partner_api_token", value=token)
    services.set_variable(tenant=tenant, actor=ACTOR, key="region", value="eu-west-1")
    folder = storage / "dags"
    folder.mkdir()
    (folder / "leaky.py").write_text(textwrap.dedent(DAG_FILE))
    os.chmod(folder, 0o755)
    os.chmod(folder / "leaky.py", 0o644)
    result = upload_bundle(tenant=tenant, actor=ACTOR, source=folder, pause_new_dags=True)
    assert not result.import_errors, result.import_errors

    run = engine.create_dag_run(
        tenant=tenant,
        dag=Dag.objects.for_tenant(tenant).get(dag_id="leaky"),
        actor=ACTOR,
        run_type=RunType.MANUAL,
        logical_date=timezone.now(),
        data_interval=None,
    )
    engine.schedule_run(run)
    logs = {}
    for task_id in ("leak", "templated"):
        ti = TaskInstance.objects.get(dag_run=run, task_id=task_id)
        (queued,) = engine.queue_task_instances([ti])
        runner.run_task_instance(tenant_id=tenant.pk, ti_id=queued.pk, try_number=queued.try_number)
        ti = TaskInstance.objects.select_related("dag_run__dag").get(pk=ti.pk)
        logs[task_id] = (ti, get_log_store().read(ti, ti.try_number).decode())

    leak, text = logs["leak"]
    assert leak.state == TIState.FAILED
    assert "password: ***" in text and "extra: ***" in text and "token: *** region: eu-west-1" in text
    assert "cannot log in with ***" in text and "cannot log in with ***" in leak.error
    templated, templated_text = logs["templated"]
    assert templated.state == TIState.SUCCESS and "*** ***" in templated_text
    stored = text + templated_text + leak.error + json.dumps(templated.rendered_fields)
    assert "in a url: postgres://etl:***@db" in text
    for secret in (password, aws_secret, token, quote(aws_secret, safe=""), quote_plus(aws_secret)):
        assert secret not in stored
    reads = AuditEntry.objects.for_tenant(tenant).filter(action="secret.read")
    assert {entry.detail["name"] for entry in reads} >= {"warehouse", "partner_api_token", "region"}
    assert all("task" in entry.actor_label for entry in reads)
