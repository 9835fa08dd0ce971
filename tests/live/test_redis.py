"""The live streams on the Redis channel layer, as production runs them: events published in this process
and in another process (a short-lived one that creates runs through the services and exits) reach a
connected client; another tenant's never do."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from tenants.roles import Role
from tests.factories import make_run
from tests.live.helpers import dag_stream, live, open_stream, tenant_stream

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]

# Runs in a separate process: create a run of each DAG version given, in order, through the services.
CREATE_RUNS = """
import sys
import django

django.setup()
from scheduler.models import DagVersion
from tests.factories import make_run

for pk in sys.argv[1:]:
    version = DagVersion.objects.select_related("tenant").get(pk=int(pk))
    print(make_run(version.tenant, version).run_id)
"""


def database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("another process needs a shared database: run with PostgreSQL (TEST_DATABASE_URL)")
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def create_runs_elsewhere(redis_url: str, *versions) -> list[str]:
    env = os.environ | {
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "tradewind.settings",
        "PYTHONPATH": str(REPO),
    }
    result = subprocess.run(
        [sys.executable, "-c", CREATE_RUNS, *(str(v.pk) for v in versions)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def queued(slug: str, dag_id: str, run_id: str) -> dict:
    return {
        "type": "event",
        "tenant": slug,
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": None,
        "map_index": None,
        "state": "queued",
        "try_number": None,
    }


@live
async def test_an_event_from_this_process_reaches_the_client_through_redis(
    redis_layer, tenant, other_tenant, make_member, make_dag
):
    user = await database_sync_to_async(make_member)(tenant, Role.VIEWER)
    ours = await database_sync_to_async(make_dag)(tenant, "etl")
    theirs = await database_sync_to_async(make_dag)(other_tenant, "etl")
    stream = await open_stream(tenant_stream(tenant.slug), user=user)
    assert stream.connected
    await database_sync_to_async(make_run)(other_tenant, theirs.active_version)
    run = await database_sync_to_async(make_run)(tenant, ours.active_version)
    assert await stream.next_event() == queued("acme", "etl", run.run_id)
    assert await stream.nothing_more()
    await stream.close()


@live
async def test_an_event_from_another_process_reaches_the_client_through_redis(
    redis_layer, tenant, other_tenant, make_member, make_dag
):
    user = await database_sync_to_async(make_member)(tenant, Role.VIEWER)
    ours = await database_sync_to_async(make_dag)(tenant, "etl")
    theirs = await database_sync_to_async(make_dag)(other_tenant, "etl")
    tenant_wide = await open_stream(tenant_stream(tenant.slug), user=user)
    one_dag = await open_stream(dag_stream(tenant.slug, "etl"), user=user)
    assert (tenant_wide.connected, one_dag.connected) == (True, True)
    _, run_id = await asyncio.to_thread(
        create_runs_elsewhere, redis_layer, theirs.active_version, ours.active_version
    )
    for stream in (tenant_wide, one_dag):
        assert await stream.next_event(timeout=10) == queued("acme", "etl", run_id)
        assert await stream.nothing_more()
        await stream.close()
