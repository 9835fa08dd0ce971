"""/health reports each configured dependency and answers 503 when one is down."""

from __future__ import annotations

import os

import pytest


def test_health_ok_with_database_and_channel_layer(client, db):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["channel_layer"] == {"ok": True}
    assert "broker" not in body["checks"]  # no broker configured: the local executor


def test_health_503_when_the_broker_is_down(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.redis
def test_health_ok_with_redis_broker_and_channel_layer(client, db, settings):
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("Redis is not reachable (CI sets REQUIRE_SERVICES=1, which makes this a failure)")
    settings.CELERY_BROKER_URL = redis_url
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [redis_url]}}
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    try:
        response = client.get("/health")
    finally:
        channel_layers.backends.clear()
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["broker"] == {"ok": True}
