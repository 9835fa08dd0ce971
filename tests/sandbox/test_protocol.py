"""The JSON-lines framing and how handler errors come back into the child."""

from __future__ import annotations

import pytest

from tradewind.sdk.exceptions import AirflowNotFoundException
from workers.sandbox.protocol import (
    LineBuffer,
    ProtocolError,
    RemoteError,
    encode,
    error_payload,
    rebuild_error,
)


def test_messages_split_across_reads_are_reassembled():
    buffer = LineBuffer(limit=1000)
    data = encode({"id": 1, "op": "get_variable", "kwargs": {"key": "a\nb"}}) + encode({"done": None})
    assert buffer.feed(data[:7]) == []
    assert buffer.feed(data[7:]) == [
        {"id": 1, "op": "get_variable", "kwargs": {"key": "a\nb"}},
        {"done": None},
    ]


def test_an_oversized_or_invalid_message_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        LineBuffer(limit=10).feed(b"x" * 11)
    with pytest.raises(ProtocolError):
        LineBuffer(limit=100).feed(b"[1, 2]\n")
    with pytest.raises(ProtocolError):
        LineBuffer(limit=100).feed(b"{not json\n")


def test_errors_come_back_as_the_same_builtin_or_sdk_type():
    assert isinstance(rebuild_error(error_payload(KeyError("k"))), KeyError)
    assert isinstance(rebuild_error(error_payload(PermissionError("no"))), PermissionError)
    rebuilt = rebuild_error(error_payload(AirflowNotFoundException("conn x")))
    assert isinstance(rebuilt, AirflowNotFoundException) and str(rebuilt) == "conn x"


def test_unknown_error_types_become_remote_errors():
    class QuotaExceeded(Exception):
        pass

    rebuilt = rebuild_error(error_payload(QuotaExceeded("too many")))
    assert isinstance(rebuilt, RemoteError)
    assert str(rebuilt) == "QuotaExceeded: too many"
    assert isinstance(rebuild_error({"type": "SystemExit", "message": "0"}), RemoteError)
