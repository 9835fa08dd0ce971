"""Helpers for the live-stream tests: open a real websocket against tradewind.asgi.application and run
async test bodies from pytest's synchronous tests (the suite has no asyncio plugin)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from tradewind.asgi import application

ORIGIN = (b"origin", b"http://testserver")


def live(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an `async def` test body on an event loop; its database calls (database_sync_to_async) run on
    the test's own thread, so they see what the test created."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        async_to_sync(test)(*args, **kwargs)

    return run


def tenant_stream(slug: str) -> str:
    return f"/t/{slug}/ws/events/"


def dag_stream(slug: str, dag_id: str) -> str:
    return f"/t/{slug}/ws/dags/{quote(dag_id)}/"


def _session_cookie(user: Any) -> tuple[bytes, bytes]:
    browser = Client()
    browser.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return b"cookie", f"{name}={browser.cookies[name].value}".encode()


class Stream:
    """One websocket client: `connected` and the close `code` of a refused handshake."""

    def __init__(self, communicator: WebsocketCommunicator, connected: bool, code: int | None) -> None:
        self.communicator = communicator
        self.connected = connected
        self.code = code

    async def next_event(self, timeout: float = 5) -> dict:
        return await self.communicator.receive_json_from(timeout=timeout)

    async def nothing_more(self, timeout: float = 0.5) -> bool:
        return await self.communicator.receive_nothing(timeout=timeout)

    async def close(self) -> None:
        await self.communicator.disconnect()


async def open_stream(
    path: str,
    *,
    user: Any = None,
    token: str | None = None,
    token_in: str = "header",
    origin: tuple[bytes, bytes] | None = ORIGIN,
) -> Stream:
    """Open `path` with a session cookie for `user` and/or an API token (in the Authorization header or
    the `token` query parameter)."""
    headers = [origin] if origin else []
    if user is not None:
        headers.append(await database_sync_to_async(_session_cookie)(user))
    if token is not None and token_in == "header":
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if token is not None and token_in == "query":
        path = f"{path}?token={quote(token)}"
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return Stream(communicator, connected, code)
