"""What every suite shares: one loopback coturn and one relay-only agent per test run, and the `turn`
marker.

The pipeline's synth step runs `pytest -m "not browser and not turn"` because CodeBuild's image has
neither chromium nor coturn; every test that uses the TURN server is marked automatically.
"""

from collections.abc import Iterator

import pytest

from testbed.turn import TurnServer
from tests.support.agent_process import AgentProcess

TURN_FIXTURES = {"turn_server", "relay_agent", "tls_turn_server", "tls_relay_agent"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TURN_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.turn)


@pytest.fixture(scope="session")
def turn_server() -> Iterator[TurnServer]:
    """coturn on 127.0.0.1 with a static user (testbed/turn.py)."""
    with TurnServer.start() as turn:
        yield turn


@pytest.fixture(scope="session")
def relay_agent(turn_server: TurnServer) -> Iterator[AgentProcess]:
    """The echo agent as in the cloud: relay only, the loopback coturn as its (static) TURN server."""
    with AgentProcess.start_relay_only(turn_server.ice_server_env()) as agent:
        yield agent
