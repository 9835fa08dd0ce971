"""`/health`: is each configured dependency reachable? 503 when one is down."""

from __future__ import annotations

import logging
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_broker() -> None:
    from kombu import Connection  # only deployments with a broker pay for the import

    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as broker:
        broker.ensure_connection(max_retries=1, timeout=2)


def check_channel_layer() -> None:
    layer = get_channel_layer()
    channel = f"health.{uuid.uuid4().hex}"

    async def roundtrip() -> None:
        await layer.send(channel, {"type": "health.ping"})
        message = await layer.receive(channel)
        if message.get("type") != "health.ping":
            raise RuntimeError("channel layer returned a different message")

    async_to_sync(roundtrip)()


def health(request: HttpRequest) -> JsonResponse:
    """JSON status of the database, and of the broker and channel layer where configured."""
    checks = {"database": check_database, "channel_layer": check_channel_layer}
    if settings.CELERY_BROKER_URL:
        checks["broker"] = check_broker
    results: dict[str, dict[str, object]] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = {"ok": True}
        except Exception as error:  # any failure of a dependency is reported, not raised
            logger.warning("health check %s failed", name, extra={"check": name, "error": str(error)})
            results[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    healthy = all(result["ok"] for result in results.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": results}
    return JsonResponse(body, status=200 if healthy else 503)
