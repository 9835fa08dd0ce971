"""Macros, masking rules, Variables, Connections and the value encoding used for XComs and triggers."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json

import attrs
import pendulum
import pytest

from tradewind.sdk import macros
from tradewind.sdk.connections import BaseHook, Connection
from tradewind.sdk.exceptions import AirflowNotFoundException
from tradewind.sdk.execution import decode_value, encode_value, get_client, set_client
from tradewind.sdk.masking import is_sensitive_key, iter_secret_values
from tradewind.sdk.variables import Variable, VariableAccessor


def test_macros():
    assert macros.ds_add("2015-01-01", 5) == "2015-01-06"
    assert macros.ds_add("2015-01-06", -5) == "2015-01-01"
    assert macros.ds_format("2015-01-01", "%Y-%m-%d", "%m-%d-%y") == "01-01-15"
    assert macros.datetime(2020, 1, 1) + macros.timedelta(days=1) == macros.datetime(2020, 1, 2)
    assert 0 <= macros.random() < 1
    assert macros.json.loads("[1]") == [1]
    assert macros.yaml.safe_load("a: 1") == {"a": 1}
    assert isinstance(macros.uuid.uuid4(), macros.uuid.UUID)
    assert macros.dateutil.relativedelta  # the package's submodules are importable through it
    then = pendulum.datetime(2020, 1, 1)
    assert macros.datetime_diff_for_humans(then, then.add(days=2)) == "2 days before"


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("password", True),
        ("DB_PASSWORD", True),
        ("my_api_key", True),
        ("aws_secret_access_key", True),
        ("Authorization", True),
        ("host", False),
        ("region", False),
        ("", False),
    ],
)
def test_sensitive_names(name, sensitive):
    assert is_sensitive_key(name) is sensitive


def test_secret_values_follow_airflows_rule():
    assert list(iter_secret_values("pw")) == ["pw"]
    assert list(iter_secret_values("x", "region")) == []
    extra = {"region": "eu", "token": "t0k", "nested": {"private_key": "pk", "user": "u"}, "list": ["a"]}
    assert sorted(iter_secret_values(extra)) == ["pk", "t0k"]
    assert sorted(iter_secret_values({"user": "u", "n": 1}, "api_secret")) == ["1", "u"]


def test_variables_get_set_defaults_json_and_masking(client):
    client.variables.update({"plain": "v", "cfg": '{"a": 1, "password": "hunter2"}', "api_key": "k-123"})
    assert Variable.get("plain") == "v"
    assert Variable.get("cfg", deserialize_json=True) == {"a": 1, "password": "hunter2"}
    assert Variable.get("missing", default_var=None) is None
    assert Variable.get("missing", default="d") == "d"
    with pytest.raises(KeyError, match="Variable missing does not exist"):
        Variable.get("missing")
    Variable.set("new", {"x": [1]}, serialize_json=True)
    assert Variable.get("new", deserialize_json=True) == {"x": [1]}
    Variable.set("num", 5)
    assert client.variables["num"] == "5"
    assert Variable.get("api_key") == "k-123"
    assert "k-123" in client.masked and "hunter2" in client.masked and "v" not in client.masked
    assert Variable.setdefault("fresh", "first") == "first" and Variable.get("fresh") == "first"
    with pytest.raises(KeyError):
        Variable.update("absent", "x")


def test_var_accessor(client):
    client.variables.update({"name": "value", "blob": '{"k": {"inner": 2}}'})
    var = VariableAccessor()
    assert var.value.name == "value"
    assert var.json.blob["k"]["inner"] == 2
    assert var.value.get("absent", "fallback") == "fallback"
    with pytest.raises(KeyError):
        _ = var.value.absent


def test_connection_uri_round_trip_and_fields():
    conn = Connection(
        conn_id="pg", uri="postgresql://us%40er:p%40ss@db.example.com:5432/analytics?sslmode=require"
    )
    assert (conn.conn_type, conn.host, conn.login, conn.password, conn.port, conn.schema) == (
        "postgres",
        "db.example.com",
        "us@er",
        "p@ss",
        5432,
        "analytics",
    )
    assert conn.extra_dejson == {"sslmode": "require"}
    again = Connection(uri=conn.get_uri())
    assert again.to_dict() | {"conn_id": "pg"} == conn.to_dict()
    nested = Connection(conn_type="http", host="https://api.example.com", extra={"headers": {"a": "b"}})
    parsed = Connection.from_uri(nested.get_uri())
    assert parsed.host == "https://api.example.com" and parsed.extra_dejson == {"headers": {"a": "b"}}
    with pytest.raises(ValueError):
        Connection(uri="http://x", host="y")


def test_base_hook_get_connection_masks_and_raises(client):
    client.connections["db"] = {
        "conn_type": "postgres",
        "host": "h",
        "login": "u",
        "password": "s3cret",
        "port": 5432,
        "schema": "s",
        "extra": '{"sslmode": "require", "private_key": "PK"}',
    }
    conn = BaseHook.get_connection("db")
    assert conn.conn_id == "db" and conn.password == "s3cret" and conn.port == 5432
    assert conn.extra_dejson["sslmode"] == "require"
    assert "s3cret" in client.masked and "PK" in client.masked and "require" not in client.masked
    assert Connection.get("db").host == "h"
    with pytest.raises(AirflowNotFoundException, match="The conn_id `nope` isn't defined"):
        BaseHook.get_connection("nope")


def test_get_client_without_client_is_a_clear_error():
    set_client(None)
    with pytest.raises(RuntimeError, match="No Tradewind client is set"):
        get_client()


def test_value_encoding_round_trip_and_refusal():
    value = {
        "when": pendulum.datetime(2024, 1, 2, 3, tz="Europe/Paris"),
        "day": datetime.date(2024, 1, 2),
        "delta": datetime.timedelta(minutes=90),
        "amount": decimal.Decimal("1.10"),
        "tags": {"a"},
        "pair": (1, 2),
    }
    decoded = decode_value(encode_value(value))
    assert decoded["when"] == value["when"] and isinstance(decoded["when"], pendulum.DateTime)
    assert decoded["day"] == value["day"] and decoded["delta"] == value["delta"]
    assert (
        decoded["amount"] == decimal.Decimal("1.10")
        and decoded["tags"] == {"a"}
        and decoded["pair"] == [1, 2]
    )
    with pytest.raises(TypeError, match="The result of t is of type builtins.object"):
        encode_value({"x": object()}, what="The result of t")


@dataclasses.dataclass
class ModelConfig:
    name: str
    learning_rate: float
    trained: datetime.date | None = None


@attrs.define
class Batch:
    rows: int
    config: ModelConfig


def test_dataclass_and_attrs_instances_come_back_as_themselves():
    batch = Batch(rows=3, config=ModelConfig("m", 0.1, trained=datetime.date(2024, 1, 2)))
    stored = encode_value([batch])
    json.dumps(stored)  # what the XCom row holds is plain JSON
    assert decode_value(stored) == [batch]

    def inside():
        @dataclasses.dataclass
        class Local:
            x: int

        return Local(1)

    with pytest.raises(
        TypeError, match="a class defined inside a function, which another task cannot rebuild"
    ):
        encode_value(inside(), what="The result of t")
