"""Assets that DAGs declare: stored when a DAG version is stored, as Airflow's DAG processor does, so an asset
exists (for `@asset` parameters, the API and the UI) before its first event."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from scheduler.models import Asset


def declared_assets(serialized: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The assets (not aliases or refs) a serialized DAG names in its schedule and its tasks' inlets and
    outlets."""
    yield from _assets_in(serialized.get("schedule"))
    for task in serialized.get("tasks") or []:
        yield from _assets_in(task.get("inlets"))
        yield from _assets_in(task.get("outlets"))


def _assets_in(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if value.get("type") == "asset" and isinstance(value.get("uri"), str):
            yield value
        for item in value.values():
            yield from _assets_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _assets_in(item)


def register_assets(tenant_id: int, serialized_dags: Iterable[dict[str, Any]]) -> None:
    """Create the tenant's asset rows these DAGs declare and bring existing rows up to their declaration (name,
    group, extra: the DAG file is where an asset is defined)."""
    declared: dict[str, dict[str, Any]] = {}
    for serialized in serialized_dags:
        for item in declared_assets(serialized):
            declared[item["uri"][:1500]] = {
                "name": str(item.get("name") or item["uri"])[:1500],
                "group": str(item.get("group") or "")[:1500],
                "extra": item.get("extra") if isinstance(item.get("extra"), dict) else {},
            }
    if not declared:
        return
    existing = {a.uri: a for a in Asset.objects.for_tenant(tenant_id).filter(uri__in=list(declared))}
    changed = []
    for uri, fields in declared.items():
        asset = existing.get(uri)
        if asset is not None and any(getattr(asset, key) != value for key, value in fields.items()):
            for key, value in fields.items():
                setattr(asset, key, value)
            changed.append(asset)
    Asset.objects.bulk_create(
        [
            Asset(tenant_id=tenant_id, uri=uri, **fields)
            for uri, fields in declared.items()
            if uri not in existing
        ],
        ignore_conflicts=True,  # a task's event may create the same row meanwhile
    )
    Asset.objects.bulk_update(changed, ["name", "group", "extra"])
