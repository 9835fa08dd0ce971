"""Airflow's file formats for connections and variables (what `airflow connections|variables import/export`
and Airflow's local-filesystem secrets backend read and write): JSON, YAML and .env.

Connections are handled as Airflow's field dicts: conn_id, conn_type, description, host, schema, login,
password, port, extra (a JSON string). URIs are parsed and written by the SDK's `Connection`, the one
implementation of Airflow's URI rules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tradewind.errors import Invalid
from tradewind.sdk.connections import Connection as UriConnection

CONNECTION_FIELDS = ("conn_type", "description", "host", "schema", "login", "password", "port", "extra")
FILE_FORMATS = ("json", "yaml", "env")


def file_format(path: Path, explicit: str | None = None) -> str:
    """The format of `path`: `explicit` when given, else from its suffix (.json, .yaml/.yml, .env)."""
    if explicit:
        if explicit not in FILE_FORMATS:
            raise Invalid(f"unsupported file format {explicit!r}: choose json, yaml or env")
        return explicit
    suffix = path.suffix.lower().lstrip(".")
    if suffix in {"yaml", "yml"}:
        return "yaml"
    if suffix in {"json", "env"}:
        return suffix
    if path.name == ".env":
        return "env"
    raise Invalid(f"cannot tell the format of {path.name!r}: use a .json, .yaml, .yml or .env file")


def connection_from_any(conn_id: str, value: Any) -> dict[str, Any]:
    """Airflow's field dict from a URI string or a dict of fields (`uri`/`conn_uri` allowed, `extra` as a
    dict or a JSON string); unknown fields are an error, as in Airflow's file backend."""
    if isinstance(value, str):
        try:
            parsed = UriConnection(conn_id=conn_id, uri=value.strip())
        except ValueError as error:
            raise Invalid(f"connection {conn_id!r}: {error}") from None
        return _fields(conn_id, parsed)
    if not isinstance(value, dict):
        raise Invalid(
            f"connection {conn_id!r}: expected a URI or a mapping of fields, not {type(value).__name__}"
        )
    value = dict(value)
    uri = value.pop("uri", None) or value.pop("conn_uri", None)
    value.pop("conn_id", None)
    unknown = set(value) - set(CONNECTION_FIELDS) - {"extra_dejson"}
    if unknown:
        raise Invalid(f"connection {conn_id!r}: unexpected field(s) {', '.join(sorted(unknown))}")
    if uri:
        fields = connection_from_any(conn_id, uri)
        if value.get("description"):
            fields["description"] = value["description"]
        return fields
    extra = value.get("extra", value.get("extra_dejson"))
    if isinstance(extra, dict):
        extra = json.dumps(extra)
    elif extra is not None and not isinstance(extra, str):
        raise Invalid(f"connection {conn_id!r}: extra must be a JSON object or string")
    port = value.get("port")
    try:
        port = int(port) if port not in (None, "") else None
    except (TypeError, ValueError):
        raise Invalid(f"connection {conn_id!r}: port {port!r} is not a number") from None
    if not value.get("conn_type"):
        raise Invalid(f"connection {conn_id!r}: conn_type is required")
    return {
        "conn_id": conn_id,
        "conn_type": str(value["conn_type"]),
        "description": value.get("description") or None,
        "host": _str_or_none(value.get("host")),
        "schema": _str_or_none(value.get("schema")),
        "login": _str_or_none(value.get("login")),
        "password": _str_or_none(value.get("password")),
        "port": port,
        "extra": extra or None,
    }


def connection_uri(conn: dict[str, Any]) -> str:
    """Airflow's URI for a field dict."""
    return _to_sdk(conn).get_uri()


def _to_sdk(conn: dict[str, Any]) -> UriConnection:
    return UriConnection(
        conn_id=conn["conn_id"],
        conn_type=conn.get("conn_type"),
        description=conn.get("description"),
        host=conn.get("host"),
        login=conn.get("login"),
        password=conn.get("password"),
        schema=conn.get("schema"),
        port=conn.get("port"),
        extra=conn.get("extra"),
    )


def _fields(conn_id: str, parsed: UriConnection) -> dict[str, Any]:
    return {
        "conn_id": conn_id,
        "conn_type": parsed.conn_type,
        "description": parsed.description,
        "host": parsed.host or None,
        "schema": parsed.schema or None,
        "login": parsed.login,
        "password": parsed.password,
        "port": parsed.port,
        "extra": parsed.extra or None,
    }


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _parse_env(text: str, what: str) -> dict[str, str]:
    """Airflow's .env rules: KEY=VALUE per line, blank lines and # comments ignored, a key only once."""
    result: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise Invalid(f"line {number}: expected KEY=VALUE, got {raw!r}")
        if key in result:
            raise Invalid(f"line {number}: the {what} {key!r} is defined twice")
        result[key] = value.strip()
    return result


def _load_mapping(text: str, fmt: str, what: str) -> dict[str, Any]:
    if fmt == "env":
        return _parse_env(text, what)
    try:
        data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise Invalid(f"not valid {fmt.upper()}: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise Invalid(f"a {what} file must hold a mapping of {what} names to values")
    return data


def parse_connections(text: str, fmt: str) -> list[dict[str, Any]]:
    """Connections from a file's text: {conn_id: URI or fields} (JSON/YAML) or conn_id=URI|JSON (.env)."""
    result = []
    for conn_id, value in _load_mapping(text, fmt, "connection").items():
        if fmt == "env" and value.lstrip().startswith("{"):
            try:
                value = json.loads(value)
            except ValueError as error:
                raise Invalid(f"connection {conn_id!r}: not valid JSON: {error}") from None
        result.append(connection_from_any(str(conn_id), value))
    return result


def dump_connections(conns: list[dict[str, Any]], fmt: str, serialization: str = "uri") -> str:
    """Connections as Airflow exports them: JSON/YAML maps conn_id to its fields (extra as a string, as
    Airflow writes it); .env writes conn_id=URI, or conn_id=JSON with `serialization="json"`."""
    if fmt == "env":
        lines = []
        for conn in conns:
            if serialization == "json":
                lines.append(f"{conn['conn_id']}={json.dumps(_export_fields(conn))}")
            else:
                lines.append(f"{conn['conn_id']}={connection_uri(conn)}")
        return "".join(f"{line}\n" for line in lines)
    data = {conn["conn_id"]: _export_fields(conn) for conn in conns}
    if fmt == "json":
        return json.dumps(data, indent=4) + "\n"
    return yaml.safe_dump(data, sort_keys=False)


def _export_fields(conn: dict[str, Any]) -> dict[str, Any]:
    return {name: conn.get(name) for name in CONNECTION_FIELDS}


def parse_variables(text: str, fmt: str) -> list[tuple[str, str, str | None]]:
    """(key, value, description) from a variables file. JSON/YAML values that are not strings are stored
    as JSON (Airflow's import does the same); {"value": v, "description": d} carries a description."""
    result = []
    for key, value in _load_mapping(text, fmt, "variable").items():
        description = None
        if isinstance(value, dict) and set(value) == {"value", "description"}:
            description = value["description"]
            value = value["value"]
        if not isinstance(value, str):
            value = json.dumps(value)
        result.append((str(key), value, description))
    return result


def dump_variables(variables: list[tuple[str, str]], fmt: str) -> str:
    """Variables as Airflow exports them: {key: value}, values that hold JSON written as JSON."""
    if fmt == "env":
        for key, value in variables:
            if "\n" in value:
                raise Invalid(
                    f"variable {key!r} spans several lines, which .env cannot hold: use JSON or YAML"
                )
        return "".join(f"{key}={value}\n" for key, value in variables)
    data = {key: _maybe_json(value) for key, value in variables}
    if fmt == "json":
        return json.dumps(data, indent=4, sort_keys=True) + "\n"
    return yaml.safe_dump(data, sort_keys=True)


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value
