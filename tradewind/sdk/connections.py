"""Airflow Connections for task code: `Connection` (fields, URIs, extras) and `BaseHook.get_connection`."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from tradewind.sdk.masking import mask_secret

log = logging.getLogger(__name__)

_EXTRA_KEY = "__extra__"


def _normalize_conn_type(conn_type: str) -> str:
    if conn_type == "postgresql":
        return "postgres"
    return conn_type.replace("-", "_")


class Connection:
    """Connection details for an external system, with Airflow's fields and URI format.

    `Connection(conn_id=..., uri="postgres://user:pw@host:5432/db?sslmode=require")` parses a URI the way
    Airflow does; `get_uri()` writes one back; `extra` is a JSON string and `extra_dejson` its dict.
    """

    def __init__(
        self,
        conn_id: str | None = None,
        conn_type: str | None = None,
        description: str | None = None,
        host: str | None = None,
        login: str | None = None,
        password: str | None = None,
        schema: str | None = None,
        port: int | None = None,
        extra: str | dict | None = None,
        uri: str | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.description = description
        if uri and any((conn_type, host, login, password, schema, port, extra)):
            raise ValueError(
                "You must create an object using the URI or individual values (conn_type, host, login, "
                "password, schema, port or extra). You can't mix these two ways to create this object."
            )
        self.conn_type = conn_type
        self.host = host
        self.login = login
        self.password = password
        self.schema = schema
        self.port = int(port) if port not in (None, "") else None
        self.extra = json.dumps(extra) if isinstance(extra, dict) else extra
        if uri:
            self._parse_from_uri(uri)

    @classmethod
    def from_uri(cls, uri: str, conn_id: str | None = None, **kwargs: Any) -> Connection:
        """Build a connection from an Airflow connection URI (Airflow 3's spelling)."""
        return cls(conn_id=conn_id, uri=uri, **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Connection:
        """Build a connection from a dict of Airflow's field names (unknown keys are ignored)."""
        fields = ("conn_id", "conn_type", "description", "host", "login", "password", "schema", "port")
        return cls(**{name: data.get(name) for name in fields}, extra=data.get("extra"))

    @classmethod
    def from_json(cls, value: str, conn_id: str | None = None) -> Connection:
        """Build a connection from Airflow's JSON form (as in an AIRFLOW_CONN_* variable)."""
        data = json.loads(value)
        data.setdefault("conn_id", conn_id)
        return cls.from_dict(data)

    def _parse_from_uri(self, uri: str) -> None:
        scheme_count = uri.count("://")
        if scheme_count > 2:
            raise ValueError(f"Invalid connection URI: {uri!r}")
        host_has_protocol = scheme_count == 2
        parts = urlsplit(uri)
        self.conn_type = _normalize_conn_type(parts.scheme)
        rest = uri.replace(f"{parts.scheme}://", "" if host_has_protocol else "//", 1)
        protocol = None
        if host_has_protocol:
            protocol, rest = rest.split("://", 1)
            rest = "//" + rest
        parts = urlsplit(rest)
        host = unquote(parts.hostname or "")
        self.host = f"{protocol}://{host}" if protocol else host
        path = parts.path[1:]
        self.schema = unquote(path) if path else path
        self.login = unquote(parts.username) if parts.username else parts.username
        self.password = unquote(parts.password) if parts.password else parts.password
        self.port = parts.port
        if parts.query:
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            self.extra = query[_EXTRA_KEY] if _EXTRA_KEY in query else json.dumps(query)

    def get_uri(self) -> str:
        """This connection as an Airflow connection URI (the inverse of `Connection(uri=...)`)."""
        uri = f"{self.conn_type.lower().replace('_', '-')}://" if self.conn_type else "//"
        host = self.host or ""
        if "://" in host:
            protocol, host = host.split("://", 1)
            uri += f"{protocol}://"
        authority = ""
        if self.login is not None:
            authority += quote(self.login, safe="")
        if self.password is not None:
            authority += ":" + quote(self.password, safe="")
        if authority:
            uri += authority + "@"
        host_block = quote(host, safe="") if host else ""
        if self.port:
            host_block += f"@:{self.port}" if not host_block and not authority else f":{self.port}"
        if self.schema:
            host_block += f"/{quote(self.schema, safe='')}"
        uri += host_block
        if self.extra:
            separator = "?" if self.schema else "/?"
            try:
                query = urlencode(self.extra_dejson)
            except TypeError:
                query = ""
            if query and self.extra_dejson == dict(parse_qsl(query, keep_blank_values=True)):
                uri += separator + query
            else:
                uri += separator + urlencode({_EXTRA_KEY: self.extra})
        return uri

    @property
    def extra_dejson(self) -> dict[str, Any]:
        """The extra field decoded from JSON ({} when empty or not valid JSON, as Airflow logs and does)."""
        if not self.extra:
            return {}
        try:
            value = json.loads(self.extra)
        except json.JSONDecodeError:
            log.error("Failed parsing the json for conn_id %s", self.conn_id)
            return {}
        return value if isinstance(value, dict) else {}

    def get_extra_dejson(self, nested: bool = False) -> dict[str, Any]:
        """`extra_dejson`; with `nested`, string values holding JSON are decoded too."""
        extra = self.extra_dejson
        if nested:
            for key, value in list(extra.items()):
                if isinstance(value, str):
                    try:
                        extra[key] = json.loads(value)
                    except (json.JSONDecodeError, TypeError):
                        pass
        return extra

    def get_extra(self) -> str | None:
        """The raw extra JSON string."""
        return self.extra

    def get_password(self) -> str | None:
        """The password (Airflow's accessor)."""
        return self.password

    def to_dict(self) -> dict[str, Any]:
        """Airflow's field names and values; `extra` as the decoded dict."""
        return {
            "conn_id": self.conn_id,
            "conn_type": self.conn_type,
            "description": self.description,
            "host": self.host,
            "login": self.login,
            "password": self.password,
            "schema": self.schema,
            "port": self.port,
            "extra": self.extra_dejson,
        }

    def as_json(self) -> str:
        """The connection as Airflow's JSON form."""
        data = {key: value for key, value in self.to_dict().items() if key != "conn_id" and value}
        return json.dumps(data)

    def get_hook(self, *, hook_params: dict | None = None) -> Any:
        """Hooks come from provider packages, which Tradewind does not bundle."""
        raise NotImplementedError(f"No hook is available for connection type {self.conn_type!r} on Tradewind")

    def __repr__(self) -> str:
        return f"Connection(conn_id={self.conn_id!r}, conn_type={self.conn_type!r}, host={self.host!r})"

    @classmethod
    def get(cls, conn_id: str) -> Connection:
        """Fetch connection `conn_id` (Airflow 3's `Connection.get`); AirflowNotFoundException if missing."""
        return BaseHook.get_connection(conn_id)

    @classmethod
    def get_connection_from_secrets(cls, conn_id: str) -> Connection:
        """Fetch connection `conn_id` (Airflow 2's spelling)."""
        return BaseHook.get_connection(conn_id)


def fetch_connection(conn_id: str) -> Connection:
    """Ask the running task's parent for `conn_id`; masks its password and sensitive extras in logs.
    Raises AirflowNotFoundException "The conn_id `x` isn't defined" when there is none."""
    from tradewind.sdk.exceptions import AirflowNotFoundException
    from tradewind.sdk.execution import get_client

    data = get_client().get_connection(conn_id)
    if data is None:
        raise AirflowNotFoundException(f"The conn_id `{conn_id}` isn't defined")
    connection = Connection.from_dict({**data, "conn_id": data.get("conn_id") or conn_id})
    if connection.password:
        mask_secret(connection.password)
    if connection.extra:
        mask_secret(connection.extra_dejson)
    return connection


class BaseHook:
    """Base for hooks (Airflow's `BaseHook`): looks connections up for the running task."""

    conn_name_attr: str = "conn_id"
    default_conn_name: str = "default_conn_id"
    conn_type: str = ""
    hook_name: str = ""

    def __init__(self, logger_name: str | None = None, **_kwargs: Any) -> None:
        self.log = logging.getLogger(logger_name or f"{type(self).__module__}.{type(self).__name__}")

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        """The connection `conn_id`; AirflowNotFoundException when it is not defined."""
        return fetch_connection(conn_id)

    @classmethod
    def get_connections(cls, conn_id: str) -> list[Connection]:
        """Airflow 1/2 compatibility: the connection as a one-item list."""
        return [cls.get_connection(conn_id)]

    @classmethod
    def get_hook(cls, conn_id: str, hook_params: dict | None = None) -> Any:
        """Hooks come from provider packages, which Tradewind does not bundle."""
        return cls.get_connection(conn_id).get_hook(hook_params=hook_params)

    def get_conn(self) -> Any:
        """Subclasses return a client for their system."""
        raise NotImplementedError()


class ConnectionAccessor:
    """`conn.<id>` in templates: the connection's fields as attributes, or `conn.get('id')`."""

    def __getattr__(self, conn_id: str) -> Connection:
        if conn_id.startswith("__"):
            raise AttributeError(conn_id)
        return fetch_connection(conn_id)

    def __getitem__(self, conn_id: str) -> Connection:
        return fetch_connection(conn_id)

    def get(self, conn_id: str, default_conn: Any = None) -> Any:
        """The connection, or `default_conn` when it is not defined."""
        from tradewind.sdk.exceptions import AirflowNotFoundException

        try:
            return fetch_connection(conn_id)
        except AirflowNotFoundException:
            return default_conn

    def __repr__(self) -> str:
        return "<conn>"
