"""Assets and schedules: the assets DAGs declare, stored when a DAG version is stored (as Airflow's DAG
processor does, so an asset exists for `@asset` parameters, the API and the UI before its first event), and
which asset events an asset schedule waits on — by URI, by Asset.ref and by AssetAlias."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Q

from scheduler.models import Asset, AssetEvent


def declared_assets(serialized: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The assets (not aliases or refs) a serialized DAG names in its schedule and its tasks' inlets and
    outlets."""
    parts = [serialized.get("schedule")]
    for task in serialized.get("tasks") or []:
        parts += [task.get("inlets"), task.get("outlets")]
    for node in _nodes(parts):
        if node.get("type") == "asset" and isinstance(node.get("uri"), str):
            yield node


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every dict in a serialized tree (a schedule's condition, a task's inlets), outermost first."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _nodes(item)
    elif isinstance(value, list):
        for item in value:
            yield from _nodes(item)


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


# --- What a schedule waits on ------------------------------------------------------------------------------
# Keys as BaseAsset.evaluate reads them: an asset's URI, "ref:<name or uri>" of an Asset.ref, "alias:<name>" of
# an AssetAlias. An event of an asset sets its URI, the refs to its name or URI, and every alias events of that
# asset were ever added through (Airflow resolves an alias to those assets).


def schedule_keys(schedule: Any) -> set[str]:
    """The keys a serialized schedule (or condition) waits on."""
    keys: set[str] = set()
    for node in _nodes(schedule):
        kind = node.get("type")
        if kind == "asset" and isinstance(node.get("uri"), str):
            keys.add(node["uri"])
        elif kind == "asset_ref":
            keys.add(f"ref:{node.get('name') or node.get('uri')}")
        elif kind == "asset_alias":
            keys.add(f"alias:{node.get('name')}")
    return keys


def event_keys(tenant_id: int, assets: Iterable[Asset]) -> dict[int, set[str]]:
    """asset pk -> the keys an event of that asset sets (one query, for the aliases)."""
    assets = list(assets)
    keys = {asset.pk: {asset.uri, f"ref:{asset.uri}", f"ref:{asset.name}"} for asset in assets}
    aliases = (
        AssetEvent.objects.for_tenant(tenant_id)
        .filter(asset__in=[asset.pk for asset in assets])
        .exclude(source_alias="")
        .values_list("asset_id", "source_alias")
        .distinct()
    )
    for asset_id, alias in aliases:
        keys[asset_id].add(f"alias:{alias}")
    return keys


def assets_waited_on(tenant_id: int, keys: set[str]) -> Any:
    """The tenant's assets an event of which sets one of `keys` (a queryset)."""
    uris = {key for key in keys if not key.startswith(("ref:", "alias:"))}
    refs = {key.removeprefix("ref:") for key in keys if key.startswith("ref:")}
    aliases = {key.removeprefix("alias:") for key in keys if key.startswith("alias:")}
    aliased = AssetEvent.objects.for_tenant(tenant_id).filter(source_alias__in=aliases).values("asset_id")
    return Asset.objects.for_tenant(tenant_id).filter(
        Q(uri__in=uris | refs) | Q(name__in=refs) | Q(pk__in=aliased)
    )
