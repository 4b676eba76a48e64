"""Fixtures for the agent suite: the agent as a real process, a loopback coturn."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# tests.support is imported as a package from the repository root, which pytest does not put on sys.path.
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.agent_process import AgentProcess  # noqa: E402
from tests.support.turn import TurnServer  # noqa: E402

#: Short enough that the vanished-caller test is quick, long enough for a loaded machine.
AUDIO_TIMEOUT_SECONDS = 3


@pytest.fixture(scope="session")
def echo_agent() -> Iterator[AgentProcess]:
    """The echo agent on a free loopback port, with room for the five-call test."""
    with AgentProcess.start(
        voice="echo",
        env={"VOICE_AGENT_MAX_CALLS": "8", "VOICE_AGENT_AUDIO_TIMEOUT_SECONDS": str(AUDIO_TIMEOUT_SECONDS)},
    ) as agent:
        yield agent


@pytest.fixture(scope="session")
def turn_server() -> Iterator[TurnServer]:
    with TurnServer.start() as turn:
        yield turn


@pytest.fixture(scope="session")
def relay_agent(turn_server: TurnServer) -> Iterator[AgentProcess]:
    """The agent as in the cloud: relay only, the loopback coturn as its (static) TURN server."""
    with AgentProcess.start(
        voice="echo", ice_servers="static", relay_only=True, env=turn_server.ice_server_env()
    ) as agent:
        yield agent
