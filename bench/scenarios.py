"""The measurements: call set-up timing, echo latency over a call, and the cost of N concurrent calls."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from bench.caller import Caller
from bench.processes import cpu_seconds, rss_bytes, thread_count
from bench.signals import (
    SAMPLE_RATE,
    Echo,
    ReceivedAudio,
    caller_chirps,
    chirp,
    crosstalk_gain,
    gain_db,
    leakage_outside,
    measure_echoes,
    outside_own_echoes,
)

LEAD_FRAMES = 25
"""The first chirp leaves 0.5 s into the call, once both ends have settled."""
CALLER_OFFSET_FRAMES = 10
"""Caller i chirps 200 ms after caller i-1, so anyone else's echo would fall outside its own windows."""
SEARCH_SECONDS = 0.9
WARMUP_SECONDS = 2.0
"""Excluded from the CPU window: ICE, DTLS, codec start-up and the first jitter-buffer fill."""


def _http(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30.0))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


async def measure_setup(url: str, count: int) -> dict[str, Any]:
    """``count`` calls one after another: each connects, waits for the first event, hangs up."""
    samples: list[dict[str, Any]] = []
    template = chirp()
    async with _http(url) as http:
        for _ in range(count):
            caller = Caller(http, template, first_chirp_frame=10**9)
            try:
                await caller.connect()
                samples.append(caller.setup_figures())
            finally:
                await caller.close()
            await asyncio.sleep(0.3)

    def median(key: str) -> float | None:
        values = [s[key] for s in samples if s[key] is not None]
        return statistics.median(values) if values else None

    return {
        "calls": count,
        "median_offer_to_answer_ms": median("offer_to_answer_ms"),
        "median_connect_ms": median("connect_ms"),
        "median_gather_ms": median("gather_ms"),
        "median_ice_config_ms": median("ice_config_ms"),
        "median_first_event_ms": median("first_event_ms"),
        "setup_requests_per_call": max(s["setup_requests"] for s in samples),
        "candidate_types": sorted({str(s["candidate_type"]) for s in samples}),
        "samples": samples,
    }


@dataclass
class Usage:
    cpu: float
    rss: int
    threads: int
    own_cpu: float
    at: float


def _usage(pid: int) -> Usage:
    return Usage(
        cpu=cpu_seconds(pid),
        rss=rss_bytes(pid),
        threads=thread_count(pid),
        own_cpu=cpu_seconds(os.getpid()),
        at=time.monotonic(),
    )


async def idle_usage(pid: int, seconds: float) -> dict[str, Any]:
    """The target with no call: its baseline memory and the CPU it burns doing nothing."""
    await asyncio.sleep(1.0)
    before = _usage(pid)
    await asyncio.sleep(seconds)
    after = _usage(pid)
    window = after.at - before.at
    return {
        "rss_mb": after.rss / 2**20,
        "threads": after.threads,
        "cpu_s_per_s": (after.cpu - before.cpu) / window,
        "window_s": window,
    }


@dataclass
class _Heard:
    """One caller's recording and the echoes found in it."""

    received: ReceivedAudio
    sent: list[float]
    echoes: list[Echo]

    @property
    def echo_times(self) -> list[float]:
        return [self.received.time_of(e.onset_sample) for e in self.echoes if e.onset_sample is not None]


def _caller_figures(index: int, heard: list[_Heard], templates: list[np.ndarray], connected: float) -> dict:
    mine = heard[index]
    received, sent, echoes = mine.received, mine.sent, mine.echoes
    found = [e for e in echoes if e.latency_ms is not None]
    latencies = [e.latency_ms for e in echoes if e.latency_ms is not None]
    start = received.first_sample_after(connected) + round(0.1 * SAMPLE_RATE)
    stop = received.first_sample_after(sent[-1] + SEARCH_SECONDS) if sent else 0
    leak = leakage_outside(received, echoes, len(templates[index]), start_sample=start, stop_sample=stop)
    # Only what lies outside this caller's own echoes can be someone else.
    outside = outside_own_echoes(
        received, echoes, len(templates[index]), start_sample=start, stop_sample=stop
    )
    elsewhere = ReceivedAudio(
        np.where(outside, received.samples, 0), received.frame_starts, received.frame_times
    )
    others = [
        crosstalk_gain(elsewhere, templates[j], other.echo_times)
        for j, other in enumerate(heard)
        if j != index
    ]
    crosstalk = max(others, default=None)
    first, last = latencies[:5], latencies[-5:]
    slope = (
        float(np.polyfit([e.sent_at - sent[0] for e in found], latencies, 1)[0]) * 10
        if len(latencies) >= 3
        else None
    )
    return {
        "caller": index,
        "chirps_sent": len(sent),
        "echoes_found": len(latencies),
        "median_ms": statistics.median(latencies) if latencies else None,
        "p10_ms": percentile(latencies, 10),
        "p90_ms": percentile(latencies, 90),
        "min_ms": min(latencies, default=None),
        "max_ms": max(latencies, default=None),
        "growth_ms": statistics.median(last) - statistics.median(first) if len(latencies) >= 10 else None,
        "slope_ms_per_10s": slope,
        "min_score": min((e.score for e in found), default=None),
        # An intact echo matches the chirp at ~0.99; a gap or a dropped frame inside it lowers the score
        # and moves part of it outside the echo window (seen as leakage, not as crosstalk).
        "torn_echoes": sum(1 for e in found if not e.intact),
        "leak_max_abs": leak.max_abs,
        "leak_rms_dbfs": leak.rms_dbfs,
        "leak_seconds_checked": leak.samples_checked / SAMPLE_RATE,
        "crosstalk_gain": crosstalk,
        "crosstalk_db": gain_db(crosstalk) if crosstalk else None,
        "latencies_ms": [round(x, 2) for x in latencies],
    }


async def measure_calls(url: str, pid: int, *, calls: int, seconds: float, idle_rss: int) -> dict[str, Any]:
    """``calls`` concurrent calls of ``seconds`` each, chirping once a second at staggered offsets."""
    templates = caller_chirps(calls)
    # Caller i chirps in its own band and 200 ms after caller i-1.
    async with _http(url) as http:
        callers = [
            Caller(http, templates[i], first_chirp_frame=LEAD_FRAMES + i * CALLER_OFFSET_FRAMES)
            for i in range(calls)
        ]
        try:
            await asyncio.gather(*(c.connect() for c in callers))
            connected = time.monotonic()
            await asyncio.sleep(WARMUP_SECONDS)
            before = _usage(pid)
            await asyncio.sleep(max(seconds - WARMUP_SECONDS - 0.5, 1.0))
            after = _usage(pid)
            await asyncio.sleep(max(connected + seconds - time.monotonic(), 0))
            ended = time.monotonic()
            status = (await http.get("/ping")).json().get("status")
        finally:
            await asyncio.gather(*(c.close() for c in callers), return_exceptions=True)

    window = after.at - before.at
    heard = []
    for index, caller in enumerate(callers):
        received = caller.received_audio()
        sent = [t for t in caller.track.sent_times if t + SEARCH_SECONDS < ended]
        heard.append(_Heard(received, sent, measure_echoes(received, sent, templates[index], SEARCH_SECONDS)))
    per_caller = [_caller_figures(index, heard, templates, connected) for index in range(calls)]
    all_latencies = [x for c in per_caller for x in c["latencies_ms"]]
    return {
        "calls": calls,
        "call_seconds": seconds,
        "window_s": window,
        "ping_status_during_call": status,
        "median_latency_ms": statistics.median(all_latencies) if all_latencies else None,
        "p90_latency_ms": percentile(all_latencies, 90),
        "echoes_found": len(all_latencies),
        "chirps_sent": sum(c["chirps_sent"] for c in per_caller),
        "target_cpu_s_per_s": (after.cpu - before.cpu) / window,
        "target_cpu_s_per_call_s": (after.cpu - before.cpu) / window / calls,
        "client_cpu_s_per_s": (after.own_cpu - before.own_cpu) / window,
        "rss_mb": after.rss / 2**20,
        "rss_per_call_mb": (after.rss - idle_rss) / 2**20 / calls,
        "threads": after.threads,
        "leak_max_abs": max(c["leak_max_abs"] for c in per_caller),
        "torn_echoes": sum(c["torn_echoes"] for c in per_caller),
        "crosstalk_gain": max(c["crosstalk_gain"] for c in per_caller) if calls > 1 else None,
        "loadavg": os.getloadavg(),
        "callers": per_caller,
    }
