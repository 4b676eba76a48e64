"""Helpers for the agent suite's call tests."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from testbed.caller import RtcCaller, SignalingError
from testbed.media import SignalSource
from tests.support import signals
from tests.support.agent_process import AgentProcess

#: The echo agent's no-audio timeout: short enough that the vanished-caller test is quick, long
#: enough for a loaded machine.
AUDIO_TIMEOUT_SECONDS = 3


async def echo_round_trip(caller: RtcCaller, *, settle: float = 0.6, within: float = 30.0) -> np.ndarray:
    """Wait for the caller's signal to be sent and its echo to arrive; returns what came back."""
    await caller.wait_connected(within)
    await asyncio.wait_for(caller.source.finished.wait(), within)
    await asyncio.sleep(settle)
    return caller.recorder.samples()


def burst_caller(url: str, frequency: float, *, count: int = 3) -> tuple[RtcCaller, list[int]]:
    samples, onsets = signals.tone_bursts(frequency, count=count)
    return RtcCaller(url, source=SignalSource(samples)), onsets


async def refused_call(url: str) -> SignalingError:
    """Call an agent that must refuse the offer; returns the refusal, with the caller closed."""
    caller = RtcCaller(url)
    try:
        await caller.connect()
    except SignalingError as refusal:
        return refusal
    finally:
        await caller.close()
    raise AssertionError("the agent took a call it should have refused")


def wait_for_status(agent: AgentProcess, status: str, within: float = 15.0) -> dict:
    deadline = time.monotonic() + within
    while True:
        body = agent.ping()
        if body["status"] == status or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def ended_calls(agent: AgentProcess) -> list[dict]:
    return [e for e in agent.log_events() if e.get("event") == "call_ended"]


def wait_for_call_end(agent: AgentProcess, call_id: str, within: float = 15.0) -> dict | None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for event in ended_calls(agent):
            if event.get("call_id") == call_id:
                return event
        time.sleep(0.05)
    return None
