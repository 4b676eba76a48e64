"""A UDP relay on loopback that loses, delays and reorders datagrams, one setting per direction.

The kernel's netem is not available on these machines, so network impairment is done in user space:
put the relay in front of a TURN server and give one peer the relay's address instead of the
server's. ``upstream`` is what that peer sends towards the server (and so towards the other peer);
``downstream`` is what comes back. Each client address gets its own socket towards the server, so
the server sees one 5-tuple per client, as it would without the relay.

Loss is independent per datagram (``loss``) or in bursts (``burst``: a Gilbert-Elliott chain that
enters the bad state with probability ``loss / burst`` and stays there ``burst`` datagrams on
average). Delay is ``delay`` plus a uniform ``jitter``; datagrams that draw different jitter leave
in a different order, which is how real networks reorder. A seeded random generator makes a run
repeatable. STUN messages (TURN's own allocation and permission traffic) pass unimpaired unless
``impair_stun`` is set, so a lossy call still gets set up the same way every time.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Impairment:
    loss: float = 0.0
    """Share of datagrams dropped, 0 to 1."""
    delay: float = 0.0
    """Seconds every datagram is held."""
    jitter: float = 0.0
    """Up to this many more seconds, drawn uniformly per datagram (reorders when > packet spacing)."""
    burst: float = 1.0
    """Mean length of a loss burst in datagrams; 1 means independent losses."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss < 1.0:
            raise ValueError(f"loss must be in [0, 1), got {self.loss}")
        if self.delay < 0 or self.jitter < 0:
            raise ValueError("delay and jitter must not be negative")
        if self.burst < 1.0:
            raise ValueError(f"burst must be at least 1 datagram, got {self.burst}")


CLEAN = Impairment()


@dataclass
class DirectionStats:
    forwarded: int = 0
    dropped: int = 0
    reordered: int = 0
    bytes: int = 0
    """UDP payload bytes forwarded (TURN framing included, IP and UDP headers not)."""


@dataclass
class _Direction:
    impairment: Impairment
    rng: random.Random
    stats: DirectionStats = field(default_factory=DirectionStats)
    in_burst: bool = False
    last_due: float = 0.0

    def verdict(self, now: float) -> float | None:
        """When the datagram should leave, or None to drop it."""
        imp = self.impairment
        if imp.loss > 0:
            if imp.burst <= 1.0:
                lost = self.rng.random() < imp.loss
            else:
                # Good -> bad with p; bad -> good with 1/burst: stationary loss = loss.
                leave_bad = 1.0 / imp.burst
                enter_bad = imp.loss * leave_bad / (1.0 - imp.loss)
                self.in_burst = self.rng.random() < (1.0 - leave_bad if self.in_burst else enter_bad)
                lost = self.in_burst
            if lost:
                self.stats.dropped += 1
                return None
        due = now + imp.delay + (self.rng.random() * imp.jitter if imp.jitter else 0.0)
        if due < self.last_due:
            self.stats.reordered += 1
        self.last_due = max(self.last_due, due)
        self.stats.forwarded += 1
        return due


def is_stun(datagram: bytes) -> bool:
    """STUN messages start with two zero bits; TURN ChannelData (media) with 01 (RFC 8656)."""
    return len(datagram) >= 20 and datagram[0] < 0x40


class _Upstream(asyncio.DatagramProtocol):
    """The relay's socket towards the server for one client."""

    def __init__(self, relay: ImpairmentRelay, client: tuple[str, int]) -> None:
        self.relay = relay
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.opening: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay._forward(self.relay._downstream, data, self.relay._send_to_client, self.client)


class ImpairmentRelay(asyncio.DatagramProtocol):
    """``async with ImpairmentRelay(target_port, upstream=..., downstream=...) as relay: relay.port``"""

    def __init__(
        self,
        target_port: int,
        *,
        upstream: Impairment = CLEAN,
        downstream: Impairment = CLEAN,
        seed: int = 1,
        impair_stun: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self._target = (host, target_port)
        self._host = host
        self._upstream = _Direction(upstream, random.Random(seed))
        self._downstream = _Direction(downstream, random.Random(seed + 1))
        self._impair_stun = impair_stun
        self._transport: asyncio.DatagramTransport | None = None
        self._clients: dict[tuple[str, int], _Upstream] = {}
        self._pending: set[asyncio.TimerHandle] = set()
        self.port = 0

    @property
    def upstream_stats(self) -> DirectionStats:
        return self._upstream.stats

    @property
    def downstream_stats(self) -> DirectionStats:
        return self._downstream.stats

    def rerouted(self, ice_servers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The same ICE servers with the server's port replaced by the relay's: a peer given these
        reaches the server through the relay, so only that peer's leg is impaired."""
        target = f":{self._target[1]}"
        return [{**s, "urls": [u.replace(target, f":{self.port}") for u in s["urls"]]} for s in ice_servers]

    def set_impairment(
        self, *, upstream: Impairment | None = None, downstream: Impairment | None = None
    ) -> None:
        """Change the network mid-call (a burst of loss, a Wi-Fi hand-over)."""
        if upstream is not None:
            self._upstream.impairment = upstream
        if downstream is not None:
            self._downstream.impairment = downstream

    async def __aenter__(self) -> ImpairmentRelay:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(self._host, 0))
        self.port = self._transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        for upstream in self._clients.values():
            if upstream.transport is not None:
                upstream.transport.close()
        self._clients.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # --- datagrams from clients ---------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        upstream = self._clients.get(addr)
        if upstream is None:
            upstream = self._clients[addr] = _Upstream(self, addr)
            upstream.opening = asyncio.ensure_future(self._open_upstream(upstream))
        self._forward(self._upstream, data, self._send_to_server, upstream)

    async def _open_upstream(self, upstream: _Upstream) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: upstream, remote_addr=self._target)

    def _forward[Where](
        self, direction: _Direction, data: bytes, send: Callable[[bytes, Where], None], where: Where
    ) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if is_stun(data) and not self._impair_stun:
            due: float | None = now
        else:
            due = direction.verdict(now)
        if due is None:
            return
        direction.stats.bytes += len(data)
        if due <= now:
            send(data, where)
            return
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._pending.discard(handle)
            send(data, where)

        handle = loop.call_at(due, fire)
        self._pending.add(handle)

    def _send_to_server(self, data: bytes, upstream: _Upstream) -> None:
        if upstream.transport is None:
            # The socket towards the server is still opening: try again on the next loop turn.
            asyncio.get_running_loop().call_soon(self._send_to_server, data, upstream)
            return
        upstream.transport.sendto(data)

    def _send_to_client(self, data: bytes, client: tuple[str, int]) -> None:
        if self._transport is not None:
            self._transport.sendto(data, client)


class RelayThread:
    """An ``ImpairmentRelay`` on its own event loop in a thread, for code that is not asyncio
    (Playwright's sync API): ``with RelayThread(port, upstream=...) as relay: relay.port``."""

    def __init__(self, target_port: int, **options: Any) -> None:
        self._relay = ImpairmentRelay(target_port, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="impairment-relay", daemon=True)

    @property
    def port(self) -> int:
        return self._relay.port

    @property
    def relay(self) -> ImpairmentRelay:
        """Its stats are plain counters: read them from any thread."""
        return self._relay

    def __enter__(self) -> RelayThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._relay.__aenter__(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._relay.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
