"""Cloud mode: InvokeAgentRuntime (SigV4) against a local stand-in for the AgentCore data plane.

The client is the `--mode test` build, which takes fixed test credentials from the page instead of
Cognito (production builds contain no such path: see test_csp.py). The stand-in verifies each
signature and the session-id header, then forwards to a relay-only agent behind a real coturn.
Every test runs twice: with the stand-in answering CORS preflights itself, and with it forwarding
them to the agent (AgentCore's documentation says neither), whose allowed origin is the page's.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from voice_agent.contract import SIGNED_REQUEST_HEADERS
from web_agentcore_standin import RUNTIME_CLIENT_ERROR
from web_page_probes import (
    selected_candidate_pair,
    wait_for_call_up,
    wait_for_remote_audio,
    wait_for_state,
    wait_until,
)
from web_slow_udp import SlowUdpRelay
from web_support import TEST_REGION, cloud_config, inject_test_credentials_script

pytestmark = pytest.mark.browser


@pytest.fixture
def cloud_page(open_page: Any, cloud_site: Any, cloud_standin: Any) -> Any:
    cloud_site.config = cloud_config(cloud_standin.url)
    cloud_site.headers = {}
    page = open_page(cloud_site.url, init_script=inject_test_credentials_script())
    wait_for_state(page, "ready", "failed")
    return page


def test_cloud_call_takes_two_signed_requests_on_one_session_and_connects(
    cloud_page: Any, cloud_standin: Any
) -> None:
    page = cloud_page
    page.shot("ready")
    started = time.monotonic()
    page.click("#connect")
    wait_for_call_up(page)
    print(f"cloud call via the stand-in: Connect to call up in {time.monotonic() - started:.2f} s")

    calls = cloud_standin.behaviour.invocations
    assert [c.action for c in calls] == ["ice_config", "offer"]
    assert all(c.problems == [] for c in calls), [c.problems for c in calls]
    assert all(c.signature_valid for c in calls)
    assert calls[0].session_id == calls[1].session_id
    assert len(calls[0].session_id) >= 33
    assert page.is_checked("#relay-only") and page.is_disabled("#relay-only")
    assert selected_candidate_pair(page)["local"] == "relay"
    assert wait_for_remote_audio(page)["audioLevel"] > 0.01
    page.shot("connected")

    page.click("#hang-up")
    wait_for_state(page, "ended")
    disconnect = [c for c in cloud_standin.behaviour.invocations if c.action == "disconnect"]
    assert len(disconnect) == 1 and disconnect[0].session_id == calls[0].session_id
    assert disconnect[0].status == 200


def test_a_dropped_offer_is_retried_on_a_new_session(
    open_page: Any, cloud_site: Any, cloud_standin: Any
) -> None:
    cloud_standin.behaviour.drop_offers = 1
    cloud_site.config = cloud_config(cloud_standin.url)
    page = open_page(cloud_site.url, init_script=inject_test_credentials_script())
    wait_for_state(page, "ready")
    page.click("#connect")
    wait_for_call_up(page)
    assert "Connecting… (attempt 2 of 3)" in page.evaluate("window.__stateLog")

    calls = [(c.action, c.session_id) for c in cloud_standin.behaviour.invocations]
    assert [action for action, _ in calls] == ["ice_config", "offer", "ice_config", "offer"]
    first, retry = calls[0][1], calls[2][1]
    assert calls[1][1] == first and calls[3][1] == retry
    assert first != retry, "the retry must use a new runtime session id (a new microVM)"
    assert page.get_attribute("#call-state", "data-attempt") == "2"
    page.shot("connected-after-retry")
    page.click("#hang-up")
    wait_for_state(page, "ended")


def test_a_runtime_client_error_is_retried_on_a_new_session(
    open_page: Any, cloud_site: Any, cloud_standin: Any
) -> None:
    """A failing container reaches the browser as AgentCore's 424 RuntimeClientError, not as a 5xx."""
    cloud_standin.behaviour.offer_errors = [RUNTIME_CLIENT_ERROR]
    cloud_site.config = cloud_config(cloud_standin.url)
    page = open_page(cloud_site.url, init_script=inject_test_credentials_script())
    wait_for_state(page, "ready")
    page.click("#connect")
    wait_for_call_up(page)
    assert "Connecting… (attempt 2 of 3)" in page.evaluate("window.__stateLog")

    calls = [(c.action, c.session_id, c.status) for c in cloud_standin.behaviour.invocations]
    assert [action for action, _, _ in calls[:4]] == ["ice_config", "offer", "ice_config", "offer"]
    assert calls[1][2] == 424 and calls[3][2] == 200
    assert calls[1][1] == calls[0][1] and calls[3][1] == calls[2][1]
    assert calls[0][1] != calls[2][1], "the retry must use a new runtime session id (a new microVM)"
    page.click("#hang-up")
    wait_for_state(page, "ended")


def test_runtime_client_errors_on_every_attempt_end_with_a_readable_message(
    open_page: Any, cloud_site: Any, cloud_standin: Any
) -> None:
    cloud_standin.behaviour.offer_errors = [RUNTIME_CLIENT_ERROR] * 3
    cloud_site.config = cloud_config(cloud_standin.url)
    page = open_page(cloud_site.url, init_script=inject_test_credentials_script())
    wait_for_state(page, "ready")
    page.click("#connect")
    wait_for_state(page, "failed")
    assert page.text_content("#error") == "The voice agent failed to answer. Please try again in a moment."
    page.shot("failed")
    offers = [c for c in cloud_standin.behaviour.invocations if c.action == "offer"]
    assert len(offers) == 3 and len({c.session_id for c in offers}) == 3
    page.shot("runtime-client-error")


def test_an_agent_error_body_is_shown_as_a_readable_message(
    open_page: Any, cloud_site: Any, cloud_standin: Any
) -> None:
    cloud_standin.behaviour.offer_reply = (
        400,
        {"error": {"code": "invalid_sdp", "message": "The offer has no audio section."}},
    )
    cloud_site.config = cloud_config(cloud_standin.url)
    page = open_page(cloud_site.url, init_script=inject_test_credentials_script())
    wait_for_state(page, "ready")
    page.click("#connect")
    wait_for_state(page, "failed")
    assert page.text_content("#error") == "The offer has no audio section."
    offers = [c for c in cloud_standin.behaviour.invocations if c.action == "offer"]
    assert len(offers) == 1, "a 400 is the client's fault: retrying cannot help"
    page.shot("agent-error")


def test_rejected_credentials_ask_the_user_to_sign_in_again(
    open_page: Any, cloud_site: Any, cloud_standin: Any
) -> None:
    cloud_site.config = cloud_config(cloud_standin.url)
    expired = inject_test_credentials_script().replace("test-secret-key-for-sigv4", "a-different-secret")
    page = open_page(cloud_site.url, init_script=expired)
    wait_for_state(page, "ready")
    assert cloud_standin.behaviour.invocations[0].signature_valid is False
    assert "sign in again" in page.text_content("#error").lower()
    assert page.is_visible("#sign-in")
    page.shot("expired")


def test_the_session_header_and_region_are_those_of_the_config(cloud_page: Any, cloud_standin: Any) -> None:
    request = cloud_page.invocations[0]
    assert len(request.headers["x-amzn-bedrock-agentcore-runtime-session-id"]) >= 33
    assert f"/{TEST_REGION}/bedrock-agentcore/aws4_request" in request.headers["authorization"]


def test_candidates_found_after_the_gathering_cap_are_trickled(
    open_page: Any, cloud_site: Any, cloud_standin: Any, turn_server: Any
) -> None:
    """The browser reaches TURN through a path that adds 0.75 s each way, so its relay candidate comes
    after the 2 s cap: the offer leaves without it and it follows in an ice_candidate request."""
    slow = SlowUdpRelay(("127.0.0.1", turn_server.port), delay=0.75).start()
    try:
        slow_url = f"turn:127.0.0.1:{slow.port}?transport=udp"

        def through_slow_path(config: dict[str, Any]) -> dict[str, Any]:
            for server in config["iceServers"]:
                server["urls"] = [slow_url if u == turn_server.url else u for u in server["urls"]]
            return config

        cloud_standin.behaviour.rewrite_ice_config = through_slow_path
        cloud_site.config = cloud_config(cloud_standin.url)
        page = open_page(cloud_site.url, init_script=inject_test_credentials_script())
        wait_for_state(page, "ready")
        page.click("#connect")
        wait_for_call_up(page)
        page.shot("connected-after-trickle")

        calls = cloud_standin.behaviour.invocations
        actions = [c.action for c in calls]
        assert actions[:3] == ["ice_config", "offer", "ice_candidate"], actions
        assert "typ relay" not in calls[1].body["sdp"]
        trickled = [c for c in calls if c.action == "ice_candidate"]
        candidates = [cand["candidate"] for c in trickled for cand in c.body["candidates"]]
        assert any("typ relay" in c for c in candidates), candidates
        assert all(c.body["pc_id"] for c in trickled)
        assert {c.session_id for c in calls} == {calls[0].session_id}
        page.click("#hang-up")
        wait_for_state(page, "ended")
    finally:
        slow.stop()


def test_leaving_the_page_sends_a_signed_disconnect(cloud_page: Any, cloud_standin: Any) -> None:
    page = cloud_page
    page.click("#connect")
    wait_for_call_up(page)
    page.goto("about:blank")

    def disconnect() -> Any:
        found = [c for c in cloud_standin.behaviour.invocations if c.action == "disconnect"]
        return found[0] if found else None

    assert wait_until(lambda: disconnect() is not None, timeout_s=10), "no disconnect on page unload"
    calls = cloud_standin.behaviour.invocations
    assert disconnect().signature_valid and disconnect().session_id == calls[0].session_id


def test_the_sdk_asks_the_preflight_for_exactly_the_headers_the_agent_allows(
    open_page: Any, cloud_site: Any, agentcore_standin: Any
) -> None:
    """The pinned @aws-sdk/client-bedrock-agentcore as chromium runs it: a new header in an SDK update
    fails here, not in a deployed page whose preflight reaches the agent."""
    cloud_site.config = cloud_config(agentcore_standin.url)
    page = open_page(cloud_site.url, init_script=inject_test_credentials_script())
    wait_for_state(page, "ready")
    preflight = agentcore_standin.behaviour.preflights[0]
    assert (preflight.origin, preflight.requested_method) == (cloud_site.url, "POST")
    assert sorted(preflight.requested_headers) == sorted(SIGNED_REQUEST_HEADERS)
