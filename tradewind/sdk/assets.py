"""Assets (Airflow 2's datasets): Asset, Dataset (the same class), AssetAlias, AssetRef, Metadata, the
conditions AssetAll / AssetAny (built with ``&`` and ``|``), and the `@asset` decorator.

Serialized form (`serialize()`, `condition_from_serialized()`): {"type": "asset", "name", "uri", "group",
"extra"} | {"type": "asset_alias", "name", "group"} | {"type": "asset_ref", "name"|"uri"} |
{"type": "asset_all"|"asset_any", "objects": [...]}.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit


class BaseAsset:
    """Anything a schedule can wait for; combine with ``&`` (all) and ``|`` (any)."""

    def __and__(self, other: BaseAsset) -> AssetAll:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAll(self, other)

    def __or__(self, other: BaseAsset) -> AssetAny:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAny(self, other)

    def iter_assets(self) -> Iterator[Asset]:
        """Every concrete Asset inside."""
        return iter(())

    def iter_asset_aliases(self) -> Iterator[AssetAlias]:
        """Every AssetAlias inside."""
        return iter(())

    def serialize(self) -> dict[str, Any]:
        """JSON form (see the module docstring)."""
        raise NotImplementedError

    def evaluate(self, statuses: Mapping[str, bool]) -> bool:
        """Whether the condition holds, given which asset keys ("uri" of assets, "alias:<name>" of aliases,
        "ref:<name or uri>" of refs) have new events."""
        raise NotImplementedError


def _sanitize_uri(uri: str) -> str:
    if not isinstance(uri, str):
        raise TypeError(f"Asset URI must be a string, not {type(uri).__name__}")
    if not uri:
        raise ValueError("Asset URI cannot be empty")
    if uri.isspace():
        raise ValueError("Asset URI cannot be just whitespace")
    if not uri.isascii():
        raise ValueError("Asset URI must only consist of ASCII characters")
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "airflow":
        raise ValueError("Asset scheme 'airflow' is reserved")
    return scheme + uri[len(parts.scheme) :]


class Asset(BaseAsset):
    """A piece of data tasks produce (outlets) and DAGs wait for (schedule).

    `Asset(name_or_uri)`, `Asset(name=..., uri=...)`, Airflow 2's `Dataset(uri, extra=...)`: a missing name
    is the uri and a missing uri the name."""

    def __init__(
        self,
        name: str | None = None,
        uri: str | None = None,
        *,
        group: str = "asset",
        extra: dict[str, Any] | None = None,
        watchers: list[Any] | None = None,
    ) -> None:
        if name is None and uri is None:
            raise TypeError("Asset() requires either 'name' or 'uri'")
        if name is None:
            name = uri
        if uri is None:
            uri = name
        if not isinstance(name, str) or not name or len(name) > 1500:
            raise ValueError(f"Invalid asset name: {name!r}")
        self.name: str = name
        self.uri: str = _sanitize_uri(uri)  # type: ignore[arg-type]
        self.group = group or "asset"
        if extra is not None and not isinstance(extra, dict):
            raise TypeError("Asset extra must be a dict")
        self.extra: dict[str, Any] = extra or {}
        self.watchers = list(watchers or [])

    @property
    def normalized_uri(self) -> str:
        """The URI (no scheme-specific normalisation is applied)."""
        return self.uri

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Asset):
            return NotImplemented
        return (self.name, self.uri, self.group) == (other.name, other.uri, other.group)

    def __hash__(self) -> int:
        return hash((self.name, self.uri, self.group))

    def __repr__(self) -> str:
        if self.name == self.uri:
            return f"Asset({self.uri!r})"
        return f"Asset(name={self.name!r}, uri={self.uri!r})"

    def iter_assets(self) -> Iterator[Asset]:
        yield self

    def serialize(self) -> dict[str, Any]:
        return {"type": "asset", "name": self.name, "uri": self.uri, "group": self.group, "extra": self.extra}

    def evaluate(self, statuses: Mapping[str, bool]) -> bool:
        return bool(statuses.get(self.uri, False))

    @classmethod
    def ref(cls, *, name: str | None = None, uri: str | None = None) -> AssetRef:
        """A reference to an asset defined elsewhere, by name or by uri."""
        return AssetRef(name=name, uri=uri)


Dataset = Asset


class AssetRef(BaseAsset):
    """A reference to an asset by name or uri (Airflow 3's Asset.ref)."""

    def __init__(self, *, name: str | None = None, uri: str | None = None) -> None:
        if (name is None) == (uri is None):
            raise TypeError("Asset.ref() takes exactly one of 'name' and 'uri'")
        self.name = name
        self.uri = uri

    def __repr__(self) -> str:
        return f"AssetRef(name={self.name!r})" if self.name is not None else f"AssetRef(uri={self.uri!r})"

    def serialize(self) -> dict[str, Any]:
        return (
            {"type": "asset_ref", "name": self.name}
            if self.name is not None
            else {"type": "asset_ref", "uri": self.uri}
        )

    def evaluate(self, statuses: Mapping[str, bool]) -> bool:
        return bool(statuses.get(f"ref:{self.name if self.name is not None else self.uri}", False))


class AssetAlias(BaseAsset):
    """A name tasks can emit asset events through, deciding the actual asset at run time."""

    def __init__(self, name: str, group: str = "asset") -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Invalid asset alias name: {name!r}")
        self.name = name
        self.group = group or "asset"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AssetAlias):
            return NotImplemented
        return self.name == other.name

    def __hash__(self) -> int:
        return hash(("alias", self.name))

    def __repr__(self) -> str:
        return f"AssetAlias({self.name!r})"

    def iter_asset_aliases(self) -> Iterator[AssetAlias]:
        yield self

    def serialize(self) -> dict[str, Any]:
        return {"type": "asset_alias", "name": self.name, "group": self.group}

    def evaluate(self, statuses: Mapping[str, bool]) -> bool:
        return bool(statuses.get(f"alias:{self.name}", False))


DatasetAlias = AssetAlias


class _AssetBooleanCondition(BaseAsset):
    kind: str = ""

    def __init__(self, *objects: BaseAsset) -> None:
        if not all(isinstance(o, BaseAsset) for o in objects):
            raise TypeError("expect asset expressions in condition")
        self.objects = list(objects)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.objects == other.objects  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.kind, tuple(map(hash, self.objects))))

    def iter_assets(self) -> Iterator[Asset]:
        for obj in self.objects:
            yield from obj.iter_assets()

    def iter_asset_aliases(self) -> Iterator[AssetAlias]:
        for obj in self.objects:
            yield from obj.iter_asset_aliases()

    def serialize(self) -> dict[str, Any]:
        return {"type": self.kind, "objects": [o.serialize() for o in self.objects]}


class AssetAll(_AssetBooleanCondition):
    """All of the assets must have been updated."""

    kind = "asset_all"

    def __and__(self, other: BaseAsset) -> AssetAll:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAll(*self.objects, other)

    def __repr__(self) -> str:
        return f"AssetAll({', '.join(map(repr, self.objects))})"

    def evaluate(self, statuses: Mapping[str, bool]) -> bool:
        return all(o.evaluate(statuses) for o in self.objects)


class AssetAny(_AssetBooleanCondition):
    """Any one of the assets must have been updated."""

    kind = "asset_any"

    def __or__(self, other: BaseAsset) -> AssetAny:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAny(*self.objects, other)

    def __repr__(self) -> str:
        return f"AssetAny({', '.join(map(repr, self.objects))})"

    def evaluate(self, statuses: Mapping[str, bool]) -> bool:
        return any(o.evaluate(statuses) for o in self.objects)


DatasetAll = AssetAll
DatasetAny = AssetAny


def condition_from_serialized(data: Mapping[str, Any]) -> BaseAsset:
    """Rebuild an asset or condition from its JSON form."""
    kind = data["type"]
    if kind == "asset":
        return Asset(
            name=data["name"], uri=data["uri"], group=data.get("group", "asset"), extra=data.get("extra")
        )
    if kind == "asset_alias":
        return AssetAlias(data["name"], group=data.get("group", "asset"))
    if kind == "asset_ref":
        return AssetRef(name=data.get("name"), uri=data.get("uri"))
    objects = [condition_from_serialized(o) for o in data["objects"]]
    if kind == "asset_all":
        return AssetAll(*objects)
    if kind == "asset_any":
        return AssetAny(*objects)
    raise ValueError(f"unknown asset expression type {kind!r}")


class Metadata:
    """Yielded (or returned) by a task to attach `extra` to the event of an outlet asset, optionally
    emitting it through an alias."""

    def __init__(
        self,
        asset: Asset | str | None = None,
        extra: dict[str, Any] | None = None,
        alias: AssetAlias | str | None = None,
        *,
        target: Asset | str | None = None,
    ) -> None:
        asset = asset if asset is not None else target
        if isinstance(asset, str):
            asset = Asset(uri=asset)
        if asset is None:
            raise TypeError("Metadata() requires an asset")
        self.asset: Asset = asset
        self.extra = dict(extra or {})
        self.alias = AssetAlias(alias) if isinstance(alias, str) and alias else alias or None

    @property
    def uri(self) -> str:
        """The asset's URI."""
        return self.asset.uri

    def __repr__(self) -> str:
        return f"Metadata({self.asset!r}, {self.extra!r}, alias={self.alias!r})"


class AssetDefinition(Asset):
    """The Asset made by `@asset`: a DAG of the same name with one task ("__main__") producing it."""

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: str,
        uri: str | None,
        group: str,
        extra: dict | None,
        schedule: Any,
        dag_kwargs: dict[str, Any],
    ) -> None:
        super().__init__(name=name, uri=uri, group=group, extra=extra)
        self.function = function
        self.schedule = schedule
        self.dag = _materializing_dag(
            self, [self], schedule=schedule, dag_kwargs={"dag_id": name, **dag_kwargs}
        )


class MultiAssetDefinition(AssetAll):
    """What `@asset.multi(outlets=[...])` makes: a DAG named after the function with one task ("__main__")
    producing every outlet. As a schedule it waits for all of them."""

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        outlets: list[BaseAsset],
        schedule: Any,
        dag_kwargs: dict[str, Any],
    ) -> None:
        if not outlets:
            raise ValueError("no outlets provided")
        super().__init__(*outlets)
        self.function = function
        self.schedule = schedule
        self.dag = _materializing_dag(
            self, outlets, schedule=schedule, dag_kwargs={"dag_id": function.__name__, **dag_kwargs}
        )


_NO_DEFAULT = inspect.Parameter.empty
_GIVEN = ("self", "context")  # parameters an asset function gets from the platform, not from other assets


def _materializing_dag(
    definition: AssetDefinition | MultiAssetDefinition,
    outlets: list[BaseAsset],
    *,
    schedule: Any,
    dag_kwargs: dict[str, Any],
) -> Any:
    """The DAG of an `@asset` / `@asset.multi` function: one task running it, producing `outlets`."""
    from tradewind.sdk.dag import DAG
    from tradewind.sdk.operators.python import PythonOperator

    function = definition.function
    parameters = _asset_function_parameters(function)
    # Parameters without a default (other than self and context) name the assets the function reads.
    inlets = [
        Asset.ref(name=p) for p, default in parameters.items() if default is _NO_DEFAULT and p not in _GIVEN
    ]

    def run_asset(**context: Any) -> Any:
        kwargs: dict[str, Any] = {}
        for param, default in parameters.items():
            if default is not _NO_DEFAULT:
                kwargs[param] = default
            elif param == "self":
                kwargs[param] = definition
            elif param == "context":
                kwargs[param] = context
            else:
                kwargs[param] = _fetch_asset(param)
        return function(**kwargs)

    with DAG(schedule=schedule, **dag_kwargs) as dag:
        PythonOperator(task_id="__main__", python_callable=run_asset, inlets=inlets, outlets=outlets)
    dag.doc_md = dag.doc_md or function.__doc__
    return dag


def _asset_function_parameters(function: Callable[..., Any]) -> dict[str, Any]:
    """An `@asset` function's parameters, each with its default (_NO_DEFAULT when it has none). Wildcards
    are refused, as by Airflow."""
    found = {}
    for name, param in inspect.signature(function).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind == param.VAR_POSITIONAL else "**"
            raise TypeError(f"wildcard '{star}{name}' is not supported in @asset")
        if param.kind == param.POSITIONAL_ONLY and param.default is _NO_DEFAULT:
            raise TypeError(f"positional-only argument '{name}' without a default is not supported in @asset")
        found[name] = param.default
    return found


def _fetch_asset(name: str) -> Asset:
    """The tenant's asset named `name`, as the platform stores it (an asset a DAG declares is stored when the
    DAG is; Airflow fails the same way when there is none)."""
    from tradewind.sdk.exceptions import AirflowRuntimeError
    from tradewind.sdk.execution import get_client

    found = get_client().get_asset(name=name)
    if found is None:
        raise AirflowRuntimeError(f"Asset with name {name!r} not found")
    return Asset(name=found["name"], uri=found["uri"], group=found["group"] or "asset", extra=found["extra"])


def asset(
    python_callable: Callable[..., Any] | None = None,
    *,
    schedule: Any = None,
    name: str | None = None,
    uri: str | None = None,
    group: str = "asset",
    extra: dict[str, Any] | None = None,
    **dag_kwargs: Any,
) -> Any:
    """Decorator (Airflow 3's `@asset`): defines an asset named after the function and a DAG of the same
    name whose single task runs the function and produces the asset. Parameters named `self` / `context`
    get the asset / the task context, one with a default gets its default, and any other parameter is an
    inlet: the stored asset of that name."""

    def wrap(function: Callable[..., Any]) -> AssetDefinition:
        return AssetDefinition(
            function,
            name=name or function.__name__,
            uri=uri,
            group=group,
            extra=extra,
            schedule=schedule,
            dag_kwargs=dag_kwargs,
        )

    if python_callable is not None:
        return wrap(python_callable)
    return wrap


def _multi(
    python_callable: Callable[..., Any] | None = None,
    *,
    outlets: list[BaseAsset],
    schedule: Any = None,
    **dag_kwargs: Any,
) -> Any:
    """`@asset.multi(outlets=[...], schedule=...)`: a DAG named after the function whose single task runs
    it and produces every outlet; parameters as for `@asset`."""

    def wrap(function: Callable[..., Any]) -> MultiAssetDefinition:
        return MultiAssetDefinition(function, outlets=list(outlets), schedule=schedule, dag_kwargs=dag_kwargs)

    if python_callable is not None:
        return wrap(python_callable)
    return wrap


asset.multi = _multi  # type: ignore[attr-defined]
