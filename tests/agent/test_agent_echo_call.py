"""A real aiortc caller against the echo agent served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import numpy as np
import pytest
from agent_calls import burst_caller, echo_round_trip

from tests.support import signals
from tests.support.agent_process import AgentProcess

pytestmark = pytest.mark.timeout(120)


async def test_audio_sent_comes_back_as_the_same_signal(echo_agent: AgentProcess) -> None:
    caller, sent_onsets = burst_caller(echo_agent.url, 1000.0, count=3)
    try:
        await caller.connect()
        received = await echo_round_trip(caller)
    finally:
        await caller.disconnect()
    onsets = signals.find_onsets(received)
    assert len(onsets) == len(sent_onsets), f"expected {len(sent_onsets)} bursts back, heard {onsets}"
    # The bursts keep their spacing (no stretching: 16 kHz path at real time; padded planes made it
    # 1.2x, 120 ms per 600). The agent's playout may move by one 20 ms frame as it follows the jitter.
    assert np.allclose(np.diff(onsets), np.diff(sent_onsets), atol=48 * 25)
    # ... their pitch, and roughly their level (two Opus hops and three resamplers).
    first = received[onsets[0] + 2400 : onsets[0] + 7200]
    assert abs(signals.dominant_frequency(first) - 1000.0) < 20
    assert -20 < signals.level_dbfs(first) < -10
    # Between bursts the caller sent digital silence and hears (almost) nothing back.
    gap = received[onsets[1] - 9600 : onsets[1] - 2400]
    assert signals.level_dbfs(gap) < -60


async def test_a_complete_offer_needs_exactly_two_requests(echo_agent: AgentProcess) -> None:
    caller, _ = burst_caller(echo_agent.url, 700.0, count=1)
    try:
        await caller.connect()
        await caller.wait_connected()
        assert caller.requests == 2  # ice_config and offer
        assert caller.pc_id and len(caller.pc_id) >= 20  # unguessable
    finally:
        await caller.disconnect()


@pytest.mark.parametrize("keys", ["snake", "camel"])
async def test_trickled_candidates_work_with_either_key_spelling(echo_agent: AgentProcess, keys: str) -> None:
    caller, sent_onsets = burst_caller(echo_agent.url, 850.0, count=2)
    try:
        await caller.connect(trickle=True, candidate_keys=keys)  # type: ignore[arg-type]
        received = await echo_round_trip(caller)
        assert caller.requests > 2
    finally:
        await caller.disconnect()
    assert len(signals.find_onsets(received)) == len(sent_onsets)


async def test_events_channel_says_listening_first_then_agent_speaking(echo_agent: AgentProcess) -> None:
    caller, _ = burst_caller(echo_agent.url, 600.0, count=1)
    try:
        await caller.connect()
        first = await caller.wait_for_event(lambda e: True)
        assert first == {"type": "state", "state": "listening"}
        await caller.wait_for_event(lambda e: e == {"type": "state", "state": "agent_speaking"})
    finally:
        await caller.disconnect()


async def test_a_call_without_an_events_channel_still_echoes(echo_agent: AgentProcess) -> None:
    caller, sent_onsets = burst_caller(echo_agent.url, 500.0, count=2)
    try:
        await caller.connect(events_channel=False)
        received = await echo_round_trip(caller)
    finally:
        await caller.disconnect()
    assert len(signals.find_onsets(received)) == len(sent_onsets)
    assert caller.events == []
