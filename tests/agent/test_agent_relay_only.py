"""Relay-only through a real coturn on 127.0.0.1: both peers relay-only, as in the cloud."""

from __future__ import annotations

import pytest
from agent_calls import burst_caller, echo_round_trip

from testbed.turn import TurnServer
from tests.support import signals
from tests.support.agent_process import AgentProcess

pytestmark = pytest.mark.timeout(120)


def candidate_lines(sdp: str) -> list[str]:
    return [line for line in sdp.splitlines() if line.startswith("a=candidate:")]


async def test_ice_config_hands_the_browser_the_turn_server_and_relay_policy(
    relay_agent: AgentProcess, turn_server: TurnServer
) -> None:
    status, config = relay_agent.invoke("ice_config")
    assert status == 200
    assert config["iceTransportPolicy"] == "relay"
    assert config["iceServers"] == [
        {"urls": [turn_server.url], "username": turn_server.username, "credential": turn_server.credential}
    ]


async def test_relay_only_call_answers_only_relay_candidates_and_echoes(
    relay_agent: AgentProcess, turn_server: TurnServer
) -> None:
    caller, sent_onsets = burst_caller(relay_agent.url, 1200.0, count=2)
    try:
        config = await caller.connect()  # relay policy taken from ice_config
        assert config["iceTransportPolicy"] == "relay"
        answer_candidates = candidate_lines(caller.answer_sdp or "")
        assert answer_candidates, "the answer carries the agent's relay candidates"
        assert all(" typ relay" in line for line in answer_candidates), answer_candidates
        received = await echo_round_trip(caller)
        assert caller.requests == 2  # ice_config and offer, as in the cloud
        # The caller's own selected pair is relay-to-relay: media went through coturn.
        assert caller.pc is not None
        transport = caller.pc.getTransceivers()[0].sender.transport.transport
        pair = transport._connection._nominated.get(1)
        assert pair is not None and pair.local_candidate.type == "relay"
        assert pair.remote_candidate.type == "relay"
    finally:
        await caller.disconnect()
    assert len(signals.find_onsets(received)) == len(sent_onsets)
    assert abs(signals.dominant_frequency(received) - 1200.0) < 20


async def test_the_turn_password_never_reaches_the_agent_log(
    relay_agent: AgentProcess, turn_server: TurnServer
) -> None:
    caller, _ = burst_caller(relay_agent.url, 900.0, count=1)
    try:
        await caller.connect()
        await caller.wait_connected()
    finally:
        await caller.disconnect()
    log = relay_agent.read_log()
    assert "call_started" in log
    assert turn_server.credential not in log
