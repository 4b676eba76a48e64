"""Fixtures for the operations commands: botocore Stubbers for AWS, a fake clock, the local agent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from ops_fakes import REGION, FakeClock, StubbedAws

try:
    import voice_agent_ops  # noqa: F401
except ImportError as missing:  # a readable message instead of a collection traceback
    raise ImportError(
        "the ops package is not installed in the venv: run `.venv/bin/pip install --no-deps -e ops` "
        "(make setup does this)"
    ) from missing

from testbed.turn import TurnServer
from tests.support.agent_process import AgentProcess


@pytest.fixture
def stubbed_aws() -> Iterator[StubbedAws]:
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    clients = {name: session.client(name) for name in ("cloudformation", "ec2", "logs")}
    stubbers = {name: Stubber(client) for name, client in clients.items()}
    for stubber in stubbers.values():
        stubber.activate()
    yield StubbedAws(**clients, stubbers=stubbers)
    for stubber in stubbers.values():
        stubber.deactivate()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 21, 12, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def direct_agent() -> Iterator[AgentProcess]:
    """The echo agent with no ICE servers: host candidates on loopback."""
    with AgentProcess.start(voice="echo", ice_servers="none") as agent:
        yield agent


@pytest.fixture(scope="session")
def relay_agent(turn_server: TurnServer) -> Iterator[AgentProcess]:
    """The echo agent in relay-only mode, handing out the loopback coturn as its static TURN server."""
    with AgentProcess.start(
        voice="echo", ice_servers="static", relay_only=True, env=turn_server.ice_server_env()
    ) as agent:
        yield agent
