"""The OpenAPI schema: served at /api/schema/, every API endpoint listed once with Airflow's operation ids."""

from __future__ import annotations

import pytest
import yaml
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_schema_lists_the_api_with_airflows_operation_ids():
    response = Client().get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    prefix = "/t/{tenant_slug}/api/v1"
    operations = {
        op["operationId"]: (path, method) for path, item in paths.items() for method, op in item.items()
    }
    for operation_id, path, method in [
        ("get_dags", "/dags/", "get"),
        ("patch_dag", "/dags/{dag_id}/", "patch"),
        ("post_dag_run", "/dags/{dag_id}/dagRuns/", "post"),
        (
            "get_mapped_task_instance",
            "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/",
            "get",
        ),
        ("get_log", "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}/", "get"),
        ("post_clear_task_instances", "/dags/{dag_id}/clearTaskInstances/", "post"),
        ("upload_bundle_version", "/bundles/{bundle_name}/versions/", "post"),
        ("get_import_errors", "/importErrors/", "get"),
        ("delete_pool", "/pools/{pool_name}/", "delete"),
        ("get_asset_events", "/assets/events/", "get"),
    ]:
        assert operations[operation_id] == (prefix + path, method)
    assert not [path for path in paths if path.startswith(f"{prefix}/dags") and not path.endswith("/")]
    log = paths[
        f"{prefix}/dags/{{dag_id}}/dagRuns/{{dag_run_id}}/taskInstances/{{task_id}}/logs/{{try_number}}/"
    ]
    assert {p["name"] for p in log["get"]["parameters"]} >= {"offset", "limit", "map_index", "try_number"}
    assert "bearerAuth" in schema["components"]["securitySchemes"]
