"""Fixtures for the agent suite: the echo agent as a real process (relay_agent is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from agent_calls import AUDIO_TIMEOUT_SECONDS

from tests.support.agent_process import AgentProcess


@pytest.fixture(scope="session")
def echo_agent() -> Iterator[AgentProcess]:
    """The echo agent on a free loopback port, with room for the five-call test."""
    with AgentProcess.start(
        voice="echo",
        env={"VOICE_AGENT_MAX_CALLS": "8", "VOICE_AGENT_AUDIO_TIMEOUT_SECONDS": str(AUDIO_TIMEOUT_SECONDS)},
    ) as agent:
        yield agent
