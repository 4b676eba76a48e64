"""A UDP relay that delays every datagram both ways: a slow path to a TURN server.

Used to make the browser's TURN allocation outlast the client's ICE-gathering cap, so the offer goes
out early and the relay candidate has to be trickled through `ice_candidate`.
"""

from __future__ import annotations

import asyncio
import threading


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, relay: SlowUdpRelay, client: tuple[str, int]) -> None:
        self.relay = relay
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay.later(lambda: self.relay.front.sendto(data, self.client))


class _Front(asyncio.DatagramProtocol):
    def __init__(self, relay: SlowUdpRelay) -> None:
        self.relay = relay
        self.upstreams: dict[tuple[str, int], _Upstream] = {}
        # Datagrams that arrive while a client's upstream socket is still being opened.
        self.waiting: dict[tuple[str, int], list[bytes]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        upstream = self.upstreams.get(addr)
        if upstream is not None:
            self._send(upstream, data)
        elif addr in self.waiting:
            self.waiting[addr].append(data)
        else:
            self.waiting[addr] = [data]
            task = asyncio.ensure_future(self._open_upstream(addr))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _open_upstream(self, client: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        _, upstream = await loop.create_datagram_endpoint(
            lambda: _Upstream(self.relay, client), remote_addr=self.relay.target
        )
        self.upstreams[client] = upstream
        for data in self.waiting.pop(client):
            self._send(upstream, data)

    def _send(self, upstream: _Upstream, data: bytes) -> None:
        transport = upstream.transport
        assert transport is not None
        self.relay.later(lambda: transport.sendto(data))


class SlowUdpRelay:
    """127.0.0.1:<port> -> target, each datagram held `delay` seconds in each direction."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.target = target
        self.delay = delay
        self.loop = asyncio.new_event_loop()
        self.front: asyncio.DatagramTransport
        self.port = 0
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def later(self, send: object) -> None:
        self.loop.call_later(self.delay, send)  # type: ignore[arg-type]

    def start(self) -> SlowUdpRelay:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._open(), self.loop)
        future.result(timeout=10)
        return self

    async def _open(self) -> None:
        transport, _ = await self.loop.create_datagram_endpoint(
            lambda: _Front(self), local_addr=("127.0.0.1", 0)
        )
        self.front = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
