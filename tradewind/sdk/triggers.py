"""Triggers: small asyncio waits a deferred task hands to the triggerer (Airflow's trigger API).

asyncio is imported only where a trigger runs: defining and serializing triggers happens in every task
process, running them only in the triggerer.

A trigger serializes as (classpath, kwargs); `run_trigger` rebuilds it from that pair, runs it until its
first event and returns the event's payload. kwargs and payloads travel as JSON (datetimes encoded by
`tradewind.sdk.execution.encode_value`).
"""

from __future__ import annotations

import datetime
import glob
import importlib
import os
from collections.abc import AsyncIterator
from typing import Any

from tradewind.sdk.logging_mixin import LoggingMixin


class TriggerEvent:
    """Something a trigger reports (Airflow's `TriggerEvent`); `payload` goes to the resumed task."""

    def __init__(self, payload: Any) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return f"TriggerEvent<{self.payload!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TriggerEvent) and other.payload == self.payload

    def __hash__(self) -> int:
        return hash(repr(self.payload))


class BaseTrigger(LoggingMixin):
    """Base class of triggers: `serialize()` names the class and the kwargs that rebuild it; `run()` is an
    async generator that yields TriggerEvents; `cleanup()` runs when the trigger stops. `self.log`'s lines go
    to the task's log."""

    def __init__(self, **kwargs: Any) -> None:
        self.trigger_id: int | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """(classpath, kwargs) such that `import(classpath)(**kwargs)` recreates this trigger."""
        raise NotImplementedError(f"{type(self).__name__} must implement serialize()")

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait for the condition and yield events."""
        raise NotImplementedError(f"{type(self).__name__} must implement run()")
        yield  # pragma: no cover  (makes this an async generator)

    async def cleanup(self) -> None:
        """Release resources when the trigger is stopped."""

    def __repr__(self) -> str:
        classpath, kwargs = self.serialize()
        return f"<{classpath} {kwargs}>"


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _as_aware(moment: Any) -> datetime.datetime:
    if isinstance(moment, str):
        moment = datetime.datetime.fromisoformat(moment)
    if not isinstance(moment, datetime.datetime):
        raise TypeError(f"Expected a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None:
        raise ValueError(f"The moment passed to a DateTimeTrigger must be timezone-aware, got {moment!r}")
    return moment


class DateTimeTrigger(BaseTrigger):
    """Fires once at `moment` (a timezone-aware datetime); the event's payload is the moment."""

    def __init__(self, moment: datetime.datetime, *, end_from_trigger: bool = False) -> None:
        super().__init__()
        self.moment = _as_aware(moment)
        self.end_from_trigger = end_from_trigger

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The classpath and the moment."""
        return (
            "tradewind.sdk.triggers.DateTimeTrigger",
            {"moment": self.moment, "end_from_trigger": self.end_from_trigger},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Sleep until the moment (in short steps, so a changed clock is noticed) then fire."""
        import asyncio

        while True:
            remaining = (self.moment - _utcnow()).total_seconds()
            if remaining <= 0:
                break
            await asyncio.sleep(min(remaining, 60.0))
        yield TriggerEvent(self.moment)


class TimeDeltaTrigger(DateTimeTrigger):
    """Fires once `delta` after it is created (it serializes as a DateTimeTrigger at that moment)."""

    def __init__(self, delta: datetime.timedelta, *, end_from_trigger: bool = False) -> None:
        super().__init__(moment=_utcnow() + delta, end_from_trigger=end_from_trigger)


class FileTrigger(BaseTrigger):
    """Fires when a file matching `filepath` (a glob; `**` with `recursive`) exists, checking every
    `poke_interval` seconds; the payload is True."""

    def __init__(self, filepath: str, recursive: bool = False, poke_interval: float = 5.0, **_: Any) -> None:
        super().__init__()
        self.filepath = filepath
        self.recursive = recursive
        self.poke_interval = poke_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The classpath, the glob and how often to look."""
        return (
            "tradewind.sdk.triggers.FileTrigger",
            {"filepath": self.filepath, "recursive": self.recursive, "poke_interval": self.poke_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Look for a matching file until there is one."""
        import asyncio

        while True:
            if find_matching_file(self.filepath, self.recursive):
                yield TriggerEvent(True)
                return
            await asyncio.sleep(self.poke_interval)


def find_matching_file(pattern: str, recursive: bool) -> str | None:
    """The first file matched by `pattern`, or a file inside a matched folder (FileSensor's rule)."""
    for path in glob.glob(pattern, recursive=recursive):
        if os.path.isfile(path):
            return path
        for folder, _dirs, files in os.walk(path):
            if files:
                return os.path.join(folder, files[0])
    return None


def import_string(classpath: str) -> Any:
    """Import `package.module.Name` and return `Name`."""
    module_name, _, attribute = classpath.rpartition(".")
    if not module_name:
        raise ImportError(f"{classpath!r} is not a dotted path")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ImportError(f"Module {module_name!r} has no attribute {attribute!r}") from None


async def _first_event(trigger: BaseTrigger) -> TriggerEvent | None:
    events = trigger.run()
    try:
        async for event in events:
            return event
        return None
    finally:
        await events.aclose()
        await trigger.cleanup()


def run_trigger(classpath: str, kwargs: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
    """Rebuild the trigger `classpath(**kwargs)` (kwargs as serialized), run it with asyncio until its first
    event and return {"event": payload} (payload JSON-encoded); {"error": message} when it cannot be built,
    fails, ends without an event, or does not fire within `timeout_s` (then also "timeout": True)."""
    import asyncio

    from tradewind.sdk.execution import decode_value, encode_value

    try:
        trigger_class = import_string(classpath)
        trigger = trigger_class(**decode_value(kwargs or {}))
    except Exception as error:
        return {"error": f"Could not create trigger {classpath}: {type(error).__name__}: {error}"}
    try:
        event = asyncio.run(asyncio.wait_for(_first_event(trigger), timeout=timeout_s))
    except TimeoutError:
        return {"error": f"Trigger {classpath} did not fire within {timeout_s} seconds", "timeout": True}
    except Exception as error:
        return {"error": f"Trigger {classpath} failed: {type(error).__name__}: {error}"}
    if event is None:
        return {"error": f"Trigger {classpath} finished without an event"}
    return {"event": encode_value(event.payload)}
