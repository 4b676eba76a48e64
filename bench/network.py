"""Calls over impaired networks: loss, delay and reordering on the caller's leg, through coturn.

Both peers are relay-only through the loopback coturn, as in the cloud. The impairment relay
(testbed.impair) sits between the caller and coturn, so only the caller's leg is impaired, as for a
caller on lossy Wi-Fi: "towards the agent" is what the caller sends, "towards the caller" what comes
back. The caller receives with the adaptive receive path (see bench/caller.py), so a figure measures
the agent, not the caller's own jitter buffer. Each condition uses the same seeded relay, so the
agent and the reference see the same losses.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.caller import Caller
from bench.processes import cpu_seconds
from bench.scenarios import LEAD_FRAMES, SEARCH_SECONDS, WARMUP_SECONDS, percentile
from bench.signals import chirp, measure_echoes
from testbed.impair import CLEAN, Impairment, ImpairmentRelay

DELAY = 0.020
LOSS = 0.05


@dataclass(frozen=True)
class Condition:
    name: str
    towards_agent: Impairment
    towards_caller: Impairment
    long: bool = False
    """Run for ``--network-long-seconds``: the delay-growth check."""


CONDITIONS = (
    Condition("clean (through coturn)", CLEAN, CLEAN),
    Condition("+20 ms", Impairment(delay=DELAY), Impairment(delay=DELAY)),
    Condition(
        "+20 ms, 0-30 ms jitter",
        Impairment(delay=DELAY, jitter=0.030),
        Impairment(delay=DELAY, jitter=0.030),
    ),
    Condition(
        "+20 ms, 5% loss towards the agent", Impairment(delay=DELAY, loss=0.05), Impairment(delay=DELAY)
    ),
    Condition(
        "+20 ms, 5% loss towards the caller", Impairment(delay=DELAY), Impairment(delay=DELAY, loss=0.05)
    ),
    Condition(
        "+20 ms, 5% loss both ways", Impairment(delay=DELAY, loss=0.05), Impairment(delay=DELAY, loss=0.05)
    ),
    Condition(
        "5% loss, 0-30 ms jitter both ways (long)",
        Impairment(delay=DELAY, loss=0.05, jitter=0.030),
        Impairment(delay=DELAY, loss=0.05, jitter=0.030),
        long=True,
    ),
)


async def measure_condition(
    url: str, pid: int, turn_port: int, condition: Condition, *, seconds: float, seed: int
) -> dict[str, Any]:
    """One relayed call of ``seconds`` with the caller's leg impaired as ``condition`` says."""
    template = chirp()
    async with ImpairmentRelay(
        turn_port, upstream=condition.towards_agent, downstream=condition.towards_caller, seed=seed
    ) as relay:
        async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30.0)) as http:
            caller = Caller(
                http,
                template,
                first_chirp_frame=LEAD_FRAMES,
                receiver="adaptive",
                servers=relay.rerouted,
            )
            try:
                await caller.connect()
                connected = time.monotonic()
                await asyncio.sleep(WARMUP_SECONDS)
                cpu_before, up_before, down_before = (
                    cpu_seconds(pid),
                    relay.upstream_stats.bytes,
                    relay.downstream_stats.bytes,
                )
                window_start = time.monotonic()
                await asyncio.sleep(max(seconds - WARMUP_SECONDS - 0.5, 1.0))
                window = time.monotonic() - window_start
                cpu = cpu_seconds(pid) - cpu_before
                up_bytes = relay.upstream_stats.bytes - up_before
                down_bytes = relay.downstream_stats.bytes - down_before
                await asyncio.sleep(max(connected + seconds - time.monotonic(), 0))
                ended = time.monotonic()
            finally:
                await caller.close()
    received = caller.received_audio()
    sent = [t for t in caller.track.sent_times if t + SEARCH_SECONDS < ended]
    echoes = measure_echoes(received, sent, template, SEARCH_SECONDS)
    found = [e for e in echoes if e.latency_ms is not None]
    latencies = [e.latency_ms for e in echoes if e.latency_ms is not None]
    intact = sum(1 for e in found if e.intact)
    first, last = latencies[:5], latencies[-5:]
    return {
        "condition": condition.name,
        "seconds": seconds,
        "chirps_sent": len(sent),
        "echoes_found": len(found),
        "intact": intact,
        "intact_share": intact / len(sent) if sent else None,
        "median_latency_ms": statistics.median(latencies) if latencies else None,
        "p90_latency_ms": percentile(latencies, 90),
        "growth_ms": statistics.median(last) - statistics.median(first) if len(latencies) >= 10 else None,
        "target_cpu_s_per_call_s": cpu / window,
        # The caller's leg carries one direction each way; coturn's ChannelData framing included.
        "kbps_towards_agent": up_bytes * 8 / window / 1000,
        "kbps_towards_caller": down_bytes * 8 / window / 1000,
        "dropped_towards_agent": relay.upstream_stats.dropped,
        "dropped_towards_caller": relay.downstream_stats.dropped,
        "latencies_ms": [round(x, 1) for x in latencies],
    }


async def measure_network(
    url: str,
    pid: int,
    turn_port: int,
    *,
    seconds: float,
    long_seconds: float,
    seed: int = 1,
    only: list[str] | None = None,
) -> list[dict[str, Any]]:
    results = []
    for condition in CONDITIONS:
        if only and not any(word in condition.name for word in only):
            continue
        length = long_seconds if condition.long else seconds
        if length <= 0:
            continue
        results.append(await measure_condition(url, pid, turn_port, condition, seconds=length, seed=seed))
        await asyncio.sleep(0.5)
    return results
