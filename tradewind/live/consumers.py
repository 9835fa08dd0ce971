"""Websocket streams of live events: a tenant's, at /t/<slug>/ws/events/, and one DAG's, at
/t/<slug>/ws/dags/<dag_id>/.

Each message to the client is one state change:
{"type": "event", "tenant": "<slug>", "dag_id", "run_id", "task_id", "map_index", "state", "try_number"}
(task_id, map_index and try_number are null for a run's own state). The streams are one-way: what the
client sends is ignored.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer

from tradewind.live import fanout
from tradewind.live.access import CloseCode, LiveAccess, may_view_dag, resolve_access

# How long a per-DAG grant decision is reused for a member limited to granted DAGs: a grant taken back
# stops their events within this many seconds.
GRANT_RECHECK_SECONDS = 10.0


class LiveEventsConsumer(AsyncJsonWebsocketConsumer):
    """Base of the live streams: access is decided before any group is joined (a refusal closes the
    handshake with a CloseCode), then every event of the stream's groups is relayed, except, for members
    limited to granted DAGs, events of DAGs they may not (or may no longer) view."""

    access: LiveAccess | None = None

    def stream_dag_id(self) -> str | None:
        """The DAG this stream is about; None for the whole tenant."""
        return None

    async def connect(self) -> None:
        fanout.attach_consumer_loop(asyncio.get_running_loop())
        self._grant_decisions: dict[str, tuple[bool, float]] = {}
        slug = self.scope["url_route"]["kwargs"]["slug"]
        access = await database_sync_to_async(resolve_access)(self.scope, slug, self.stream_dag_id())
        if isinstance(access, CloseCode):
            await self.close(code=int(access))
            return
        self.access = access
        for group in access.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.access is not None:
            for group in self.access.groups:
                await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """The stream is one-way: client messages are ignored."""

    async def live_events(self, message: dict) -> None:
        """A "live.events" batch from the channel layer (tradewind.live.fanout): relay each event this client
        may see."""
        for event in message["events"]:
            if self.access is None or not await self._may_receive(event):
                continue
            await self.send_json({"type": "event", **event, "tenant": self.access.tenant.slug})

    async def _may_receive(self, event: dict) -> bool:
        access = self.access
        if event["tenant"] != access.tenant.pk:
            return False
        if access.dag is not None and event["dag_id"] != access.dag.dag_id:
            return False
        if not access.membership.grants_only:
            return True
        dag_id = event["dag_id"]
        now = time.monotonic()
        decision = self._grant_decisions.get(dag_id)
        if decision is None or decision[1] <= now:
            allowed = await database_sync_to_async(may_view_dag)(access.membership, dag_id)
            decision = (allowed, now + GRANT_RECHECK_SECONDS)
            self._grant_decisions[dag_id] = decision
        return decision[0]


class TenantEventsConsumer(LiveEventsConsumer):
    """Every event of the tenant (for members limited to granted DAGs: of those DAGs only)."""


class DagEventsConsumer(LiveEventsConsumer):
    """The events of one DAG of the tenant."""

    def stream_dag_id(self) -> str | None:
        return self.scope["url_route"]["kwargs"]["dag_id"]


class UnknownStreamConsumer(AsyncWebsocketConsumer):
    """Any other websocket path: refused like a stream that does not exist."""

    async def connect(self) -> None:
        await self.close(code=int(CloseCode.NOT_FOUND))
