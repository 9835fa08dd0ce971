"""Every list endpoint answers in a bounded number of queries, however many rows it shows (no query per row)."""

from __future__ import annotations

import pytest

from scheduler import services
from scheduler.models import Asset, AssetEvent, Bundle, ParseImportError
from tests.api.helpers import ACTOR, api, etl_dag, store_dag
from tests.factories import BundleFactory, BundleVersionFactory, make_run
from tests.scheduler.engine import START

pytestmark = pytest.mark.django_db

ROWS = 25
MAX_QUERIES = 8  # session, membership, role checks and count + page, whatever the number of rows


@pytest.fixture
def many(tenant, django_user_model):
    """ROWS of every kind of row the lists show, with the relations their serializers follow."""
    uploader = django_user_model.objects.create(username="uploader")
    run = make_run(tenant, store_dag(tenant, etl_dag()), logical_date=START, run_id="r1")
    for n in range(ROWS):
        services.set_pool(tenant=tenant, actor=ACTOR, name=f"pool{n:02}", slots=n)
        bundle = BundleFactory(tenant=tenant, name=f"bundle{n:02}")
        version = BundleVersionFactory(bundle=bundle, uploaded_by=uploader, dags={"etl": {}})
        Bundle.objects.filter(pk=bundle.pk).update(active_version=version)
        ParseImportError.objects.create(
            tenant=tenant, bundle_version=version, filename=f"f{n}.py", message="x"
        )
        BundleVersionFactory(bundle=BundleFactory(tenant=tenant, name="repo"), uploaded_by=uploader)
        asset = Asset.objects.create(tenant=tenant, uri=f"s3://bucket/{n}")
        AssetEvent.objects.create(tenant=tenant, asset=asset, source_dag_run=run, source_task_id="extract")
    return tenant


@pytest.mark.parametrize(
    ("path", "collection"),
    [
        ("pools", "pools"),
        ("bundles", "bundles"),
        ("bundles/repo/versions", "bundle_versions"),
        ("importErrors", "import_errors"),
        ("assets", "assets"),
        ("assets/events", "asset_events"),
    ],
)
def test_lists_take_a_bounded_number_of_queries(
    many, api_for, path, collection, django_assert_max_num_queries
):
    client = api_for(many)
    client.get(api(many, path))  # the session's first request does its one-time work
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(api(many, path))
    assert response.status_code == 200
    assert len(response.json()[collection]) >= ROWS
