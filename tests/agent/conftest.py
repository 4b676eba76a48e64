"""Fixtures for the agent suite: the agent as a real process, a loopback coturn."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from agent_calls import AUDIO_TIMEOUT_SECONDS

from testbed.turn import TurnServer
from tests.support.agent_process import AgentProcess


@pytest.fixture(scope="session")
def echo_agent() -> Iterator[AgentProcess]:
    """The echo agent on a free loopback port, with room for the five-call test."""
    with AgentProcess.start(
        voice="echo",
        env={"VOICE_AGENT_MAX_CALLS": "8", "VOICE_AGENT_AUDIO_TIMEOUT_SECONDS": str(AUDIO_TIMEOUT_SECONDS)},
    ) as agent:
        yield agent


@pytest.fixture(scope="session")
def relay_agent(turn_server: TurnServer) -> Iterator[AgentProcess]:
    """The agent as in the cloud: relay only, the loopback coturn as its (static) TURN server."""
    with AgentProcess.start(
        voice="echo", ice_servers="static", relay_only=True, env=turn_server.ice_server_env()
    ) as agent:
        yield agent
