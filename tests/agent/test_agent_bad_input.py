"""Every bad input gets a 4xx JSON error with a code and a message, and the agent keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from agent_calls import burst_caller

from tests.support.agent_process import AgentProcess

pytestmark = pytest.mark.timeout(120)

VALID_BUT_UNANSWERABLE_SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF\r\n"
)


@pytest.fixture(scope="module")
def http(echo_agent: AgentProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=echo_agent.url, timeout=30) as client:
        yield client


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return error


@pytest.fixture(autouse=True)
def agent_keeps_serving(http: httpx.Client, echo_agent: AgentProcess) -> Iterator[None]:
    yield
    assert http.get("/ping").json()["status"] == "Healthy"  # nothing left behind, no call stuck
    assert http.post("/invocations", json={"action": "ice_config"}).status_code == 200
    assert echo_agent.process.poll() is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"", "malformed_json"),
        (b"[1, 2]", "invalid_request"),
        (b'{"data": {}}', "missing_action"),
        (b'{"action": "dance"}', "unknown_action"),
        (b'{"action": 5}', "invalid_request"),
        (b'{"action": "offer", "data": "sdp"}', "invalid_request"),
    ],
)
def test_malformed_envelopes_are_400(http: httpx.Client, body: bytes, code: str) -> None:
    assert_error(http.post("/invocations", content=body), 400, code)


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"sdp": 123, "type": "offer"},
        {"sdp": "", "type": "offer"},
        {"sdp": VALID_BUT_UNANSWERABLE_SDP, "type": "answer"},
        {"sdp": VALID_BUT_UNANSWERABLE_SDP},
        {"sdp": VALID_BUT_UNANSWERABLE_SDP, "type": "offer", "turnOnly": "yes"},
    ],
)
def test_offers_with_wrong_types_are_400(http: httpx.Client, data: Any) -> None:
    assert_error(http.post("/invocations", json={"action": "offer", "data": data}), 400, "invalid_request")


@pytest.mark.parametrize(
    "sdp",
    ["hello", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", VALID_BUT_UNANSWERABLE_SDP, "m=audio x\r\n" * 3],
)
def test_unparsable_sdp_is_400_and_leaves_nothing_behind(http: httpx.Client, sdp: str) -> None:
    assert_error(
        http.post("/invocations", json={"action": "offer", "data": {"sdp": sdp, "type": "offer"}}),
        400,
        "invalid_sdp",
    )


def test_relay_only_asked_for_without_a_turn_server_is_400(http: httpx.Client) -> None:
    response = http.post(
        "/invocations",
        json={
            "action": "offer",
            "data": {"sdp": VALID_BUT_UNANSWERABLE_SDP, "type": "offer", "turnOnly": True},
        },
    )
    assert_error(response, 400, "turn_unavailable")


@pytest.mark.parametrize(
    "data",
    [
        {"pc_id": 5, "candidates": []},
        {"pc_id": "x"},
        {"pc_id": "x", "candidates": "candidate:1 1 udp 1 127.0.0.1 9 typ host"},
        {"pc_id": "x", "candidates": [{"candidate": "c", "sdpMLineIndex": "0"}]},
        {"pc_id": "x", "candidates": [{"sdpMid": "0"}]},
    ],
)
def test_ice_candidates_with_wrong_types_are_400(http: httpx.Client, data: Any) -> None:
    assert_error(
        http.post("/invocations", json={"action": "ice_candidate", "data": data}), 400, "invalid_request"
    )


def test_unknown_pc_id_is_404(http: httpx.Client) -> None:
    candidate = {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 9999 typ host", "sdpMid": "0"}
    assert_error(
        http.post(
            "/invocations",
            json={"action": "ice_candidate", "data": {"pc_id": "nope", "candidates": [candidate]}},
        ),
        404,
        "unknown_call",
    )
    assert_error(
        http.post("/invocations", json={"action": "disconnect", "data": {"pc_id": "nope"}}),
        404,
        "unknown_call",
    )
    assert_error(http.post("/invocations", json={"action": "disconnect", "data": {}}), 400, "invalid_request")


def test_body_over_the_limit_is_413_whether_declared_or_streamed(http: httpx.Client) -> None:
    big = b'{"action": "offer", "data": {"sdp": "' + b"a" * 300_000 + b'", "type": "offer"}}'
    assert_error(http.post("/invocations", content=big), 413, "body_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for start in range(0, len(big), 16_384):
            yield big[start : start + 16_384]

    assert_error(http.post("/invocations", content=chunks()), 413, "body_too_large")


def test_unknown_routes_and_methods_answer_json(http: httpx.Client) -> None:
    assert_error(http.get("/nowhere"), 404, "not_found")
    assert_error(http.get("/invocations"), 405, "method_not_allowed")


def test_cors_allows_the_local_web_client_and_nobody_else(http: httpx.Client) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    allowed = http.options("/invocations", headers={"Origin": "http://localhost:7860", **preflight})
    assert allowed.headers.get("access-control-allow-origin") == "http://localhost:7860"
    other = http.options("/invocations", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    simple = http.get("/ping", headers={"Origin": "http://127.0.0.1:7860"})
    assert simple.headers.get("access-control-allow-origin") == "http://127.0.0.1:7860"


async def test_bad_candidates_for_a_live_call_are_400_and_repeated_disconnect_is_404(
    echo_agent: AgentProcess,
) -> None:
    caller, _ = burst_caller(echo_agent.url, 440.0, count=1)
    try:
        await caller.connect()
        status, body = await caller.invoke(
            "ice_candidate",
            {"pc_id": caller.pc_id, "candidates": [{"candidate": "candidate:garbage", "sdpMid": "0"}]},
            check=False,
        )
        assert (status, body["error"]["code"]) == (400, "invalid_candidate")
        status, body = await caller.invoke(
            "ice_candidate",
            {
                "pc_id": caller.pc_id,
                "candidates": [{"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"}],
            },
            check=False,
        )
        assert (status, body["error"]["code"]) == (400, "invalid_candidate")  # neither mid nor index
        assert (await caller.invoke("disconnect", {"pc_id": caller.pc_id}, check=False))[0] == 200
        status, body = await caller.invoke("disconnect", {"pc_id": caller.pc_id}, check=False)
        assert (status, body["error"]["code"]) == (404, "unknown_call")
    finally:
        await caller.close()


async def test_over_the_call_cap_is_503_with_a_message() -> None:
    with AgentProcess.start(voice="echo", env={"VOICE_AGENT_MAX_CALLS": "1"}) as agent:
        first, _ = burst_caller(agent.url, 440.0, count=1)
        second, _ = burst_caller(agent.url, 550.0, count=1)
        try:
            await first.connect()
            with pytest.raises(Exception) as refused:
                await second.connect()
            assert getattr(refused.value, "status", None) == 503
            assert refused.value.body["error"]["code"] == "at_capacity"  # type: ignore[attr-defined]
            assert "1 concurrent call" in refused.value.body["error"]["message"]  # type: ignore[attr-defined]
        finally:
            await first.disconnect()
            await second.close()
        # The slot is free again.
        third, _ = burst_caller(agent.url, 660.0, count=1)
        try:
            await third.connect()
        finally:
            await third.disconnect()
