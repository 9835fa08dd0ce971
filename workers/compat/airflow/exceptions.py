"""`airflow.exceptions`: every exception class of `tradewind.sdk.exceptions`."""

from __future__ import annotations

from tradewind.sdk import exceptions as _exceptions

# Re-exported by introspection so a class added to the SDK is importable here at once.
globals().update(
    {
        name: value
        for name, value in vars(_exceptions).items()
        if isinstance(value, type) and value.__module__ == _exceptions.__name__
    }
)
