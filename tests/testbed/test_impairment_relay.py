"""The impairment relay (testbed.impair) over real UDP sockets on loopback, with an echo server behind it."""

from __future__ import annotations

import asyncio
import struct
import time

import pytest

from testbed.impair import Impairment, ImpairmentRelay, is_stun

pytestmark = pytest.mark.timeout(30)


class Echo(asyncio.DatagramProtocol):
    """Sends every datagram back to where it came from (stands in for the TURN server)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[tuple[int, float]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append((struct.unpack("!I", data[4:8])[0], time.monotonic()))


def media(n: int) -> bytes:
    """A TURN ChannelData-looking datagram (first byte 0x40) numbered n."""
    return b"\x40\x00\x00\x08" + struct.pack("!I", n) + b"\x00" * 4


async def through_relay(
    count: int, *, spacing: float = 0.002, **relay_options: object
) -> tuple[list, ImpairmentRelay]:
    loop = asyncio.get_running_loop()
    echo, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    port = echo.get_extra_info("sockname")[1]
    async with ImpairmentRelay(port, **relay_options) as relay:  # type: ignore[arg-type]
        client = Client()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: client, remote_addr=("127.0.0.1", relay.port)
        )
        sent = {}
        for n in range(count):
            sent[n] = time.monotonic()
            transport.sendto(media(n))
            await asyncio.sleep(spacing)
        await asyncio.sleep(0.3)
        transport.close()
    echo.close()
    return [(n, at - sent[n]) for n, at in client.received], relay


async def test_a_clean_relay_forwards_everything_in_order() -> None:
    received, relay = await through_relay(100)
    assert [n for n, _ in received] == list(range(100))
    assert relay.upstream_stats.dropped == relay.downstream_stats.dropped == 0


async def test_loss_is_applied_per_direction_at_the_configured_rate() -> None:
    received, relay = await through_relay(1000, spacing=0.0005, upstream=Impairment(loss=0.1))
    up = relay.upstream_stats
    assert 60 <= up.dropped <= 140  # 10% of 1000, seeded
    assert relay.downstream_stats.dropped == 0
    assert len(received) == 1000 - up.dropped


async def test_the_same_seed_loses_the_same_datagrams() -> None:
    first, _ = await through_relay(200, spacing=0.0005, upstream=Impairment(loss=0.2), seed=3)
    second, _ = await through_relay(200, spacing=0.0005, upstream=Impairment(loss=0.2), seed=3)
    assert sorted(n for n, _ in first) == sorted(n for n, _ in second)


async def test_delay_is_added_each_way() -> None:
    received, _ = await through_relay(
        20, upstream=Impairment(delay=0.030), downstream=Impairment(delay=0.020)
    )
    round_trips = [rtt for _, rtt in received]
    assert min(round_trips) >= 0.050
    assert max(round_trips) < 0.050 + 0.050  # loopback adds little; a loaded machine some


async def test_jitter_larger_than_the_spacing_reorders() -> None:
    received, relay = await through_relay(200, upstream=Impairment(delay=0.01, jitter=0.03))
    order = [n for n, _ in received]
    assert sorted(order) == list(range(200))
    assert order != sorted(order)
    assert relay.upstream_stats.reordered > 0


async def test_bursty_loss_keeps_the_rate_but_loses_in_runs() -> None:
    received, _ = await through_relay(2000, spacing=0.0002, upstream=Impairment(loss=0.05, burst=5.0))
    got = {n for n, _ in received}
    lost = [n for n in range(2000) if n not in got]
    runs = sum(1 for i, n in enumerate(lost) if i == 0 or lost[i - 1] != n - 1)
    assert 40 <= len(lost) <= 170
    assert len(lost) / runs > 2.5  # independent 5% loss would give runs of about 1.05


async def test_stun_passes_unimpaired_unless_asked() -> None:
    binding = bytes([0x00, 0x01, 0x00, 0x00]) + b"\x21\x12\xa4\x42" + b"\x00" * 12
    assert is_stun(binding) and not is_stun(media(1))
    loop = asyncio.get_running_loop()
    echo, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    async with ImpairmentRelay(echo.get_extra_info("sockname")[1], upstream=Impairment(loss=0.99)) as relay:
        replies: list[bytes] = []

        class Collect(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                replies.append(data)

        transport, _ = await loop.create_datagram_endpoint(Collect, remote_addr=("127.0.0.1", relay.port))
        for _ in range(20):
            transport.sendto(binding)
        await asyncio.sleep(0.2)
        transport.close()
    echo.close()
    assert len(replies) == 20


async def test_the_network_can_change_mid_call() -> None:
    loop = asyncio.get_running_loop()
    echo, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    async with ImpairmentRelay(echo.get_extra_info("sockname")[1]) as relay:
        client = Client()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: client, remote_addr=("127.0.0.1", relay.port)
        )
        for n in range(50):
            transport.sendto(media(n))
        await asyncio.sleep(0.1)
        relay.set_impairment(upstream=Impairment(loss=0.999))
        for n in range(50, 100):
            transport.sendto(media(n))
        await asyncio.sleep(0.1)
        transport.close()
    echo.close()
    got = [n for n, _ in client.received]
    assert got[:50] == list(range(50)) and len([n for n in got if n >= 50]) <= 2


def test_bad_settings_are_refused() -> None:
    for bad in ({"loss": 1.0}, {"loss": -0.1}, {"delay": -1.0}, {"burst": 0.5}):
        with pytest.raises(ValueError):
            Impairment(**bad)  # type: ignore[arg-type]
