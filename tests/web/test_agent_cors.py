"""The agent's CORS answers to the deployed page, for when AgentCore passes a preflight to the container:
each header the browser's AWS SDK signs is allowed, from the configured origin only."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from voice_agent.contract import SIGNED_REQUEST_HEADERS

from tests.support.agent_process import AgentProcess

SITE = "https://d111111abcdef8.cloudfront.net"


@pytest.fixture(scope="module")
def agent() -> Iterator[httpx.Client]:
    with AgentProcess.start(voice="echo", env={"VOICE_AGENT_CORS_ORIGINS": SITE}) as process:
        with httpx.Client(base_url=process.url, timeout=10) as client:
            yield client


def preflight(
    agent: httpx.Client, *, origin: str = SITE, method: str = "POST", headers: str
) -> httpx.Response:
    return agent.options(
        "/invocations",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


@pytest.mark.parametrize("header", SIGNED_REQUEST_HEADERS)
def test_a_preflight_for_each_header_the_sdk_signs_is_allowed(agent: httpx.Client, header: str) -> None:
    response = preflight(agent, headers=header)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SITE
    assert header in response.headers["access-control-allow-headers"].lower().split(", ")


def test_a_preflight_for_an_unknown_header_is_refused(agent: httpx.Client) -> None:
    response = preflight(agent, headers="authorization, x-not-sent-by-the-sdk")
    assert response.status_code == 400  # a browser fails any preflight that is not 2xx
    assert "x-not-sent-by-the-sdk" not in response.headers["access-control-allow-headers"].lower()


def test_a_preflight_from_another_origin_is_refused(agent: httpx.Client) -> None:
    response = preflight(agent, origin="https://elsewhere.example", headers="authorization")
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_a_preflight_for_a_method_the_agent_does_not_serve_is_refused(agent: httpx.Client) -> None:
    assert preflight(agent, method="DELETE", headers="authorization").status_code == 400
