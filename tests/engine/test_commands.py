"""The engine's commands refuse what they cannot do, with a clear message."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_a_worker_needs_a_broker(settings):
    settings.CELERY_BROKER_URL = ""
    with pytest.raises(CommandError, match="CELERY_BROKER_URL is not set"):
        call_command("worker")


def test_a_dedicated_worker_needs_known_tenants(settings, tenant):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # never reached: the tenants are checked first
    with pytest.raises(CommandError, match="unknown tenant.*nope"):
        call_command("worker", "--tenants", f"{tenant.slug},nope")


def test_a_tenant_process_is_only_started_by_a_supervisor():
    with pytest.raises(CommandError, match="started by the supervisor"):
        call_command("scheduler", "--run-tenants", "1")
