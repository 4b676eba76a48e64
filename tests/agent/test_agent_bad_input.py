"""Every bad input gets a 4xx JSON error with a code, a message that says what is wrong and an
error id (never exception text), and the agent keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from agent_calls import burst_caller
from agent_errors import assert_reveals_nothing
from aiortc import RTCPeerConnection

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
    assert isinstance(error["id"], str) and error["id"]
    assert_reveals_nothing(response.text)
    return error


def envelope(action: str, data: str) -> bytes:
    """A body with ``data`` spliced in as raw JSON text (to send what json.dumps cannot write)."""
    return f'{{"action": "{action}", "data": {data}}}'.encode()


CANDIDATE_LINE = "candidate:1 1 udp 2130706431 127.0.0.1 9999 typ host"


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
    ("body", "says"),
    [
        pytest.param(envelope("offer", "[" * 100_000 + "]" * 100_000), "deep", id="arrays-100000-deep"),
        pytest.param(b'{"a":' * 30_000 + b"1" + b"}" * 30_000, "deep", id="objects-30000-deep"),
        pytest.param(envelope("ice_config", '{"x": [[[[[[[1]]]]]]]}'), "deep", id="9-deep"),
        pytest.param(envelope("ice_config", '{"x": 1' + "0" * 5000 + "}"), "digits", id="5000-digit-int"),
        pytest.param(
            envelope(
                "ice_candidate",
                '{"pc_id": "x", "candidates": [{"candidate": "", "sdpMLineIndex": 1' + "0" * 30 + "}]}",
            ),
            "digits",
            id="31-digit-mline-index",
        ),
        pytest.param(envelope("ice_config", '{"x": 1e999999}'), "too large", id="1e999999"),
        pytest.param(envelope("ice_config", '{"x": -1e400}'), "too large", id="minus-1e400"),
        pytest.param(envelope("ice_config", '{"x": NaN}'), "NaN", id="NaN"),
        pytest.param(envelope("ice_config", '{"x": Infinity}'), "Infinity", id="Infinity"),
        pytest.param(envelope("ice_config", "[-Infinity]"), "-Infinity", id="minus-Infinity"),
        pytest.param(b'{"action": "\xff"}', "UTF-8", id="invalid-byte"),
        pytest.param(b'{"action": "\xc0\xaf"}', "UTF-8", id="overlong-encoding"),
        pytest.param(b'{"action": "\xed\xa0\x80"}', "UTF-8", id="encoded-surrogate"),
        pytest.param(b'{"action": "ice_config\\ud800"}', "surrogate", id="lone-high-surrogate-in-action"),
        pytest.param(envelope("offer", '{"sdp": "v=0\\udc00", "type": "offer"}'), "surrogate", id="in-sdp"),
        pytest.param(envelope("disconnect", '{"pc_id": "\\udc00\\ud800"}'), "surrogate", id="reversed-pair"),
        pytest.param(
            envelope(
                "ice_candidate", '{"pc_id": "x", "candidates": [{"candidate": "\\ud83d", "sdpMid": "0"}]}'
            ),
            "surrogate",
            id="in-candidate",
        ),
        pytest.param(b'{"action": "offer", "action": "disconnect"}', '"action" twice', id="duplicate-action"),
        pytest.param(
            envelope("disconnect", '{"pc_id": "a", "pc_id": "b"}'), '"pc_id" twice', id="duplicate-pc-id"
        ),
        pytest.param(b"   \r\n ", "empty", id="whitespace-only"),
        pytest.param(b'\xef\xbb\xbf{"action": "ice_config"}', "not valid JSON", id="byte-order-mark"),
        pytest.param(b'{"action": "ice_config"} {}', "not valid JSON", id="two-documents"),
    ],
)
def test_json_the_agent_cannot_trust_is_400_saying_what_is_wrong(
    http: httpx.Client, body: bytes, says: str
) -> None:
    error = assert_error(http.post("/invocations", content=body), 400, "malformed_json")
    assert says in error["message"], error


def test_nesting_within_the_limit_is_accepted(http: httpx.Client) -> None:
    body = envelope("ice_config", '{"extension": [[[[[[1]]]]]]}')  # 8 deep, the limit
    assert http.post("/invocations", content=body).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'"ice_config"', id="string"),
        pytest.param(b"5", id="number"),
        pytest.param(b"null", id="null"),
        pytest.param(b"true", id="boolean"),
        pytest.param(b'{"action": null}', id="action-null"),
        pytest.param(b'{"action": ["offer"]}', id="action-list"),
        pytest.param(b'{"action": {"name": "offer"}}', id="action-object"),
        pytest.param(b'{"action": true}', id="action-boolean"),
        pytest.param(envelope("ice_config", "[]"), id="data-list"),
        pytest.param(envelope("disconnect", "7"), id="data-number"),
        pytest.param(envelope("disconnect", "false"), id="data-boolean"),
    ],
)
def test_envelopes_of_the_wrong_shape_are_400(http: httpx.Client, body: bytes) -> None:
    assert_error(http.post("/invocations", content=body), 400, "invalid_request")


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"sdp": 123, "type": "offer"},
        {"sdp": "", "type": "offer"},
        {"sdp": VALID_BUT_UNANSWERABLE_SDP, "type": "answer"},
        {"sdp": VALID_BUT_UNANSWERABLE_SDP},
        {"sdp": VALID_BUT_UNANSWERABLE_SDP, "type": "offer", "turnOnly": "yes"},
        {"sdp": None, "type": "offer"},
        {"sdp": [VALID_BUT_UNANSWERABLE_SDP], "type": "offer"},
        {"sdp": {"text": VALID_BUT_UNANSWERABLE_SDP}, "type": "offer"},
        {"sdp": VALID_BUT_UNANSWERABLE_SDP, "type": None},
        {"sdp": VALID_BUT_UNANSWERABLE_SDP, "type": 1},
        {"sdp": VALID_BUT_UNANSWERABLE_SDP, "type": "offer", "turnOnly": 1},
        {"sdp": VALID_BUT_UNANSWERABLE_SDP, "type": "offer", "turnOnly": None},
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


async def test_an_offer_whose_bundle_group_names_no_section_is_400(echo_agent: AgentProcess) -> None:
    """aiortc takes this offer, then fails to answer it: the offer is at fault, so 400, not 500."""
    pc = RTCPeerConnection()
    pc.createDataChannel("events")
    pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    await pc.close()
    sdp = pc.localDescription.sdp.replace("a=mid:0", "a=mid:7")  # BUNDLE still says "0 1"
    async with httpx.AsyncClient(base_url=echo_agent.url) as client:
        answer = await client.post(
            "/invocations", json={"action": "offer", "data": {"sdp": sdp, "type": "offer"}}
        )
    assert_error(answer, 400, "invalid_sdp")


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
        {"pc_id": None, "candidates": []},
        {"pc_id": ["x"], "candidates": []},
        {"pc_id": "", "candidates": []},
        {"pc_id": "x", "candidates": None},
        {"pc_id": "x", "candidates": {"candidate": CANDIDATE_LINE, "sdpMid": "0"}},
        {"pc_id": "x", "candidates": [CANDIDATE_LINE]},
        {"pc_id": "x", "candidates": [None]},
        {"pc_id": "x", "candidates": [[CANDIDATE_LINE, "0"]]},
        {"pc_id": "x", "candidates": [{"candidate": None, "sdpMid": "0"}]},
        {"pc_id": "x", "candidates": [{"candidate": 5, "sdpMid": "0"}]},
        {"pc_id": "x", "candidates": [{"candidate": CANDIDATE_LINE, "sdpMid": 0}]},
        {"pc_id": "x", "candidates": [{"candidate": CANDIDATE_LINE, "sdpMLineIndex": -1}]},
        {"pc_id": "x", "candidates": [{"candidate": CANDIDATE_LINE, "sdpMLineIndex": 0.5}]},
        {"pc_id": "x", "candidates": [{"candidate": CANDIDATE_LINE, "sdpMLineIndex": True}]},
        {"pc_id": "x", "candidates": [{"candidate": CANDIDATE_LINE, "sdp_mline_index": "0"}]},
        {"pc_id": "x", "candidates": [{"candidate": CANDIDATE_LINE, "sdpMid": "0"}] * 201},
    ],
)
def test_ice_candidates_with_wrong_types_are_400(http: httpx.Client, data: Any) -> None:
    assert_error(
        http.post("/invocations", json={"action": "ice_candidate", "data": data}), 400, "invalid_request"
    )


@pytest.mark.parametrize(
    "data", [{"pc_id": None}, {"pc_id": 5}, {"pc_id": ""}, {"pc_id": ["x"]}, {"pc": "x"}]
)
def test_disconnects_with_wrong_types_are_400(http: httpx.Client, data: Any) -> None:
    assert_error(
        http.post("/invocations", json={"action": "disconnect", "data": data}), 400, "invalid_request"
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


#: Candidates aiortc would take and aioice then fail on, in a task no answer reaches.
UNUSABLE_CANDIDATES = {
    "candidate:1 1 udp 2130706431 127.0.0.1 99999 typ host": "port",
    "candidate:1 1 udp 2130706431 127.0.0.1 " + "9" * 5000 + " typ host": "candidate:<foundation>",
    "candidate:1 0 udp 2130706431 127.0.0.1 9 typ host": "component",
    "candidate:1 1 udp 99999999999 127.0.0.1 9 typ host": "priority",
    "candidate:1 1 sctp 2130706431 127.0.0.1 9 typ host": "transport",
    "candidate:1 1 udp 2130706431 127.0.0.1 9 typ bogus": "type",
    "candidate:1 1 udp 2130706431 evil.example.com 9 typ host": "address",
    "candidate:1 1 udp 2130706431 127.0.0.1 9 typ srflx raddr 10.0.0.1 rport 70000": "rport",
    "candidate:1 1 udp": "candidate:<foundation>",
}


async def test_candidates_a_live_call_cannot_use_are_400_saying_which_part_is_wrong(
    echo_agent: AgentProcess,
) -> None:
    caller, _ = burst_caller(echo_agent.url, 440.0, count=1)
    try:
        await caller.connect()
        for line, says in UNUSABLE_CANDIDATES.items():
            candidates = [{"candidate": line, "sdpMid": "0"}]
            status, body = await caller.invoke(
                "ice_candidate", {"pc_id": caller.pc_id, "candidates": candidates}, check=False
            )
            assert (status, body["error"]["code"]) == (400, "invalid_candidate"), (line, body)
            assert says in body["error"]["message"], (line, body)
        assert (await caller.invoke("disconnect", {"pc_id": caller.pc_id}, check=False))[0] == 200
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
