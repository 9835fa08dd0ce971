"""The parse benchmark runs end to end and reports its figures (the real figures come from `manage.py bench`)."""

from __future__ import annotations

import pytest

from scheduler.dagparsing import bench_bundle_parse
from tenants.models import Tenant


@pytest.mark.django_db
def test_bench_bundle_parse_reports_figures_and_cleans_up(bundle_store):
    figures = bench_bundle_parse(files=10, tasks=3)
    assert figures["files"] == 10 and figures["tasks_per_dag"] == 3
    assert figures["one_changed_files_parsed"] == 1
    for key in ("cold_parse_s", "cold_upload_s", "one_changed_parse_s", "one_changed_upload_s"):
        assert 0 < figures[key] < 60
    assert not Tenant.objects.filter(slug__startswith="bench-parse-").exists()
    assert [path.name for path in bundle_store.iterdir()] == [".staging"]
