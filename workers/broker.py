"""kombu's Redis transport with one client per channel for its short commands.

kombu's Redis channel builds a new redis-py client for every short command it sends: with late acks, that is
twice per message (recording the message as unacknowledged when it arrives, forgetting it at the ack), and a
client's construction (its table of about 170 reply callbacks) cost a tenth of a worker's Python time. A
redis-py client is safe to share between threads (each command or pipeline takes its own connection from the
pool), so the channel keeps one for as long as it keeps its pool. Settings select it for redis:// URLs.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    _shared_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the blocking reads (BRPOP, pub/sub) keep their own, as kombu gives them
            return super()._create_client(asynchronous=True)
        client = self._shared_client
        # The pool is replaced after a fork or a lost connection: a client of the old one is dropped with it.
        if client is None or client.connection_pool is not self.pool:
            client = self._shared_client = super()._create_client()
        return client


class Transport(redis.Transport):
    Channel = Channel
