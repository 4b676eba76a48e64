"""Calls over the agent's WebSocket contract: chosen under Advanced (locally ws://<agent>/ws), and as the
fallback when WebRTC cannot connect after the client's retries (in the cloud a SigV4-presigned wss:// URL
for InvokeAgentRuntimeWithWebSocketStream, checked by the stand-in with botocore and relayed to the agent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from web_page_probes import (
    csp_problems,
    state_log,
    wait_for_call_up,
    wait_for_quality_samples,
    wait_for_state,
    wait_for_websocket_audio,
    wait_until,
)
from web_support import TEST_REGION, cloud_config, inject_test_credentials_script, load_local_up, ping_status

from cdk.csp import content_security_policy
from tests.support.agent_process import AgentProcess

pytestmark = pytest.mark.browser

local_up = load_local_up()


@pytest.fixture
def websocket_page(local_page: Any) -> Any:
    """The local client under the local CSP, with WebSocket chosen under Advanced."""
    local_page.click("summary")
    local_page.select_option("#transport", "websocket")
    return local_page


def ws_calls_ended(agent: AgentProcess) -> list[dict[str, Any]]:
    return [
        e for e in agent.log_events() if e.get("event") == "call_ended" and e.get("transport") == "websocket"
    ]


def test_a_call_over_websocket_chosen_under_advanced_hears_the_echo(
    websocket_page: Any, echo_agent: str
) -> None:
    page = websocket_page
    page.click("#connect")
    wait_for_call_up(page)

    assert page.evaluate("window.__sockets.map(s => s.url)") == [echo_agent.replace("http", "ws") + "/ws"]
    assert page.evaluate("window.__pcs.length") == 0, "no peer connection when WebSocket is chosen"
    assert page.get_attribute("#call-state", "data-route") == "websocket"
    assert "Connected: listening (via WebSocket)" in state_log(page)
    audio = wait_for_websocket_audio(page)
    assert audio["frames"] > 50 and audio["peak"] > 1000, audio
    assert ping_status(echo_agent) == "HealthyBusy"
    assert csp_problems(page) == []
    page.shot("websocket-connected")
    page.click("#hang-up")
    wait_for_state(page, "ended")
    page.shot("websocket-ended")


def test_the_quality_panel_shows_the_websocket_figures(websocket_page: Any) -> None:
    page = websocket_page
    page.click("#connect")
    wait_for_call_up(page)
    panel = wait_for_quality_samples(page, 3)

    assert panel["Transport"] == "WebSocket"
    assert panel["Round trip"].endswith(" ms"), panel
    assert panel["Packet loss"] == "\u2013 (TCP resends)"  # an en dash: no figure
    in_kbps = int(panel["Bitrate"].split(" in")[0])
    assert 300 < in_kbps < 450, panel  # 24 kHz PCM16 is 384 kbit/s while the agent speaks
    page.click("#hang-up")
    wait_for_state(page, "ended")


def test_hanging_up_sends_stop_and_the_agent_frees_the_call(
    websocket_page: Any, echo_agent_process: AgentProcess
) -> None:
    page = websocket_page
    before = len(ws_calls_ended(echo_agent_process))
    page.click("#connect")
    wait_for_call_up(page)
    page.click("#hang-up")
    wait_for_state(page, "ended")

    assert wait_until(lambda: len(ws_calls_ended(echo_agent_process)) > before, timeout_s=10)
    assert ws_calls_ended(echo_agent_process)[-1]["reason"] == "caller_stopped"
    assert wait_until(lambda: ping_status(echo_agent_process.url) == "Healthy", timeout_s=10)
    assert page.evaluate("window.__sockets[0].readyState") == 3  # CLOSED
    assert page.is_enabled("#connect") and not page.is_enabled("#hang-up")


def test_a_call_the_agent_ends_shows_its_error_and_offers_reconnect(websocket_page: Any) -> None:
    page = websocket_page
    page.click("#connect")
    wait_for_call_up(page)
    page.evaluate(
        "window.__sockets[0].send(new Uint8Array([1]))"
    )  # an odd-length frame: the agent refuses it

    wait_for_state(page, "dropped", timeout_ms=15_000)
    assert "16-bit samples" in page.text_content("#error")
    assert page.text_content("#connect") == "Reconnect"
    page.shot("websocket-dropped")
    page.click("#connect")
    wait_for_call_up(page)
    page.click("#hang-up")
    wait_for_state(page, "ended")


PLAYBACK_CLEAR_JS = """
async (workletUrl) => {
  const context = new AudioContext();
  await context.audioWorklet.addModule(workletUrl);
  const node = new AudioWorkletNode(context, "pcm-playback", { outputChannelCount: [1] });
  node.connect(context.destination);
  const reports = [];
  node.port.onmessage = (m) => reports.push(m.data.queuedMs);
  const second = new Int16Array(24000).fill(8000);  // held up: nothing plays until the queue is read
  node.port.postMessage(second.buffer.slice(0, 7200 * 2));  // 300 ms
  await new Promise((r) => setTimeout(r, 150));
  const before = reports.at(-1);
  node.port.postMessage({ type: "clear" });
  reports.length = 0;
  await new Promise((r) => setTimeout(r, 400));
  await context.close();
  return { before, after: reports };
}
"""


def test_interrupted_drops_queued_playback_at_once(
    open_page: Any, local_site: Any, production_dist: Path, echo_agent: str
) -> None:
    """The playback worklet itself (as built into dist/): 300 ms queued, then the "clear" the page sends on
    an "interrupted" event; every report after it finds the queue empty."""
    (worklet,) = (production_dist / "assets").glob("pcm_worklet-*.js")
    local_site.config = local_up.local_config(echo_agent)
    local_site.headers = {}
    page = open_page(local_site.url)
    queued = page.evaluate(PLAYBACK_CLEAR_JS, f"/assets/{worklet.name}")

    assert queued["before"] > 100, queued
    assert queued["after"] and all(ms == 0 for ms in queued["after"]), queued


# --- the fallback: WebRTC cannot connect, the call goes over the WebSocket contract ----------------------

UNREACHABLE_TURN = {"urls": ["turn:127.0.0.1:9?transport=udp"], "username": "nobody", "credential": "nothing"}
# Test builds only: short deadlines, so two failed WebRTC attempts take seconds, not 20.
FAST_TIMINGS = "window.__VOICE_AGENT_TEST_TIMINGS__ = " + json.dumps(
    {"connectTimeoutMs": 2500, "gatherCapMs": 300, "maxAttempts": 2}
)


def test_when_webrtc_cannot_connect_the_page_calls_over_a_presigned_websocket(
    open_page: Any, cloud_site: Any, agentcore_standin: Any
) -> None:
    # A TURN server nobody answers at: relay-only ICE can never connect (a network that blocks WebRTC).
    agentcore_standin.behaviour.rewrite_ice_config = lambda reply: {**reply, "iceServers": [UNREACHABLE_TURN]}
    cloud_site.config = cloud_config(agentcore_standin.url)
    ws_origin = agentcore_standin.url.replace("http://", "ws://")
    cloud_site.headers = {
        "Content-Security-Policy": content_security_policy(
            TEST_REGION, extra_connect_sources=[agentcore_standin.url, ws_origin]
        )
    }
    page = open_page(cloud_site.url, init_script=inject_test_credentials_script() + FAST_TIMINGS)
    wait_for_state(page, "ready")
    page.click("#connect")
    wait_for_state(page, "connecting")
    page.shot("connecting")
    wait_for_call_up(page, timeout_ms=30_000)

    log = state_log(page)
    assert "Connecting… (attempt 2 of 2)" in log and "WebRTC could not connect. Trying WebSocket…" in log
    assert "Connecting over WebSocket…" in log
    assert page.get_attribute("#call-state", "data-route") == "websocket"
    (upgrade,) = agentcore_standin.behaviour.upgrades
    assert upgrade.problems == []  # botocore recomputed the SDK's presigned signature
    assert upgrade.qualifier == "DEFAULT" and len(upgrade.session_id or "") >= 33
    offers = {c.session_id for c in agentcore_standin.behaviour.invocations if c.action == "offer"}
    assert upgrade.session_id not in offers, "the WebSocket call takes a session of its own"
    assert wait_for_websocket_audio(page)["peak"] > 1000
    assert csp_problems(page) == []
    page.shot("fallback-websocket")
    page.click("#hang-up")
    wait_for_state(page, "ended")
