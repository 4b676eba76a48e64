"""Local mode against the real agent with the echo voice, as `make up` runs it."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
from web_page_probes import (
    quality_panel,
    send_agent_event,
    state_log,
    wait_for_call_up,
    wait_for_quality_samples,
    wait_for_remote_audio,
    wait_for_state,
    wait_until,
)
from web_support import load_local_up, ping_status

pytestmark = pytest.mark.browser

local_up = load_local_up()


def connect(page: Any) -> dict[str, Any]:
    """Presses Connect; returns the agent's answer to the offer."""
    with page.expect_response(
        lambda r: r.request.method == "POST" and '"offer"' in (r.request.post_data or "")
    ) as answer:
        page.click("#connect")
    wait_for_call_up(page)
    return answer.value.json()


def test_call_connects_in_exactly_two_requests_and_echoed_audio_arrives(
    local_page: Any, echo_agent: str
) -> None:
    page = local_page
    page.shot("ready")
    started = time.monotonic()
    answer = connect(page)
    print(f"local call: Connect to 'listening' in {time.monotonic() - started:.2f} s")

    assert [i.action for i in page.invocations] == ["ice_config", "offer"]
    assert page.invocations[1].data["type"] == "offer"
    assert "a=candidate" in page.invocations[1].data["sdp"], "the offer went out before ICE gathering"
    assert answer["type"] == "answer" and answer["pc_id"]
    audio = wait_for_remote_audio(page)
    assert audio["packetsReceived"] > 50, audio
    assert audio["audioLevel"] > 0.01, f"the echo is silent: {audio}"
    assert page.get_attribute("#call-state", "data-route") == "direct"
    assert ping_status(echo_agent) == "HealthyBusy"
    page.shot("connected")


def test_hang_up_sends_disconnect_stops_the_microphone_and_frees_the_call(
    local_page: Any, echo_agent: str
) -> None:
    page = local_page
    answer = connect(page)
    page.click("#hang-up")
    wait_for_state(page, "ended")
    page.shot("ended")

    disconnects = [i for i in page.invocations if i.action == "disconnect"]
    assert [d.data for d in disconnects] == [{"pc_id": answer["pc_id"]}]
    tracks = page.evaluate("window.__pcs[0].getSenders().map(s => s.track && s.track.readyState)")
    assert tracks == ["ended"] or tracks == [None], tracks
    assert wait_until(lambda: ping_status(echo_agent) == "Healthy", timeout_s=15)
    assert page.is_enabled("#connect") and not page.is_enabled("#hang-up")


CHART_IS_DRAWN_JS = """() => {
  const canvas = document.getElementById("q-chart");
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  return pixels.some((value, i) => i % 4 === 3 && value > 0);
}"""


def test_the_quality_panel_shows_the_webrtc_figures_and_a_live_chart(local_page: Any) -> None:
    page = local_page
    assert page.is_hidden("#quality")
    connect(page)
    panel = wait_for_quality_samples(page, 3)

    assert panel["Transport"] == "WebRTC, direct"
    assert panel["Round trip"].endswith(" ms") and panel["Jitter"].endswith(" ms"), panel
    assert panel["Packet loss"].endswith(" %"), panel
    received, sent = (int(part.split()[0]) for part in panel["Bitrate"].split(" / "))
    assert received > 5 and sent > 5, panel  # Opus both ways
    assert page.evaluate(CHART_IS_DRAWN_JS)
    page.shot("quality")
    page.click("#hang-up")
    wait_for_state(page, "ended")


def test_the_reply_delay_runs_from_the_callers_final_words_to_the_agents_next_audio(local_page: Any) -> None:
    """The echo voice reports no turns: the caller's final transcript is injected on the real "events"
    channel; the agent's next "agent_speaking" (the echo's own, or the injected one) ends the wait."""
    page = local_page
    connect(page)
    assert quality_panel(page)["Reply delay"] == "\u2013"
    started = time.monotonic()
    send_agent_event(page, {"type": "transcript", "role": "user", "text": "what time is it?", "final": True})
    page.wait_for_timeout(200)
    send_agent_event(page, {"type": "state", "state": "agent_speaking"})
    most = (time.monotonic() - started) * 1000

    shown = quality_panel(page)["Reply delay"]
    assert shown.endswith(" ms"), shown
    assert 0 <= int(shown.removesuffix(" ms")) <= most + 50
    page.click("#hang-up")
    wait_for_state(page, "ended")


def test_state_events_from_the_agent_reach_the_page(local_page: Any) -> None:
    page = local_page
    connect(page)
    # The echo voice plays the tone back: the agent reports speaking while it does.
    assert wait_until(lambda: "Agent speaking (direct)" in state_log(page), timeout_s=15)
    log = state_log(page)
    assert "Connected: listening (direct)" in log, log
    page.click("#hang-up")
    wait_for_state(page, "ended")


def test_mute_disables_the_microphone_track(local_page: Any) -> None:
    page = local_page
    connect(page)
    page.click("#mute")
    assert page.get_attribute("#mute", "aria-pressed") == "true"
    assert page.evaluate("window.__pcs[0].getSenders()[0].track.enabled") is False
    page.click("#mute")
    assert page.evaluate("window.__pcs[0].getSenders()[0].track.enabled") is True
    page.click("#hang-up")
    wait_for_state(page, "ended")


def test_transcript_and_states_render_from_data_channel_messages(local_page: Any) -> None:
    """The echo voice sends no transcripts: these messages are injected on the page's real "events"
    channel (a stand-in for the agent's side), so the handling and rendering are real, the sender is not."""
    page = local_page
    connect(page)
    send_agent_event(page, {"type": "transcript", "role": "user", "text": "hel", "final": False})
    send_agent_event(page, {"type": "transcript", "role": "user", "text": "hello there", "final": True})
    send_agent_event(page, {"type": "transcript", "role": "assistant", "text": "Hi!", "final": False})
    send_agent_event(
        page, {"type": "transcript", "role": "assistant", "text": "Hi! How can I help?", "final": True}
    )
    lines = page.eval_on_selector_all(
        "#transcript li", "items => items.map(i => [i.dataset.role, i.textContent, i.className])"
    )
    assert lines == [
        ["user", "You:hello there", "user"],
        ["assistant", "Agent:Hi! How can I help?", "assistant"],
    ]
    page.shot("transcript")
    # The echo agent never reports "interrupted" (it has no barge-in): this one is the injected event.
    send_agent_event(page, {"type": "state", "state": "interrupted"})
    assert "Interrupted (direct)" in state_log(page)
    send_agent_event(page, {"type": "error", "code": "voice_failed", "message": "The voice service stopped."})
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == "The voice service stopped."


def test_a_call_ended_by_the_agent_offers_reconnect(local_page: Any, echo_agent: str) -> None:
    page = local_page
    answer = connect(page)
    request = urllib.request.Request(
        f"{echo_agent}/invocations",
        data=json.dumps({"action": "disconnect", "data": {"pc_id": answer["pc_id"]}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()
    wait_for_state(page, "dropped", timeout_ms=20_000)
    assert page.text_content("#connect") == "Reconnect"
    page.shot("dropped")
    page.click("#connect")
    wait_for_call_up(page)
    page.click("#hang-up")
    wait_for_state(page, "ended")


def test_a_call_works_from_the_keyboard_on_a_phone_sized_screen(
    open_page: Any, local_site: Any, echo_agent: str
) -> None:
    local_site.config = local_up.local_config(echo_agent)
    local_site.headers = {}
    page = open_page(local_site.url, viewport={"width": 375, "height": 700})
    wait_for_state(page, "ready")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways on a phone ({width}px)"
    for name in ("Connect", "Hang up", "Mute"):
        assert page.get_by_role("button", name=name).is_visible()
    assert page.get_by_label("Microphone level").is_visible()
    assert page.get_by_role("status").is_visible()

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "connect"
    page.shot("phone")
    page.keyboard.press("Enter")
    wait_for_call_up(page)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "hang-up"
    page.keyboard.press("Enter")
    wait_for_state(page, "ended")


def test_leaving_the_page_sends_disconnect(local_page: Any, echo_agent_process: Any) -> None:
    """The beacon outlives the page, so Playwright may not report it: the agent's log is the witness.
    The closing peer connection may end the call first, and the agent then refuses the disconnect as
    unknown_call; either log line proves the request arrived."""
    page = local_page
    answer = connect(page)
    started = len(echo_agent_process.log_events())
    page.goto("about:blank")

    def disconnect_arrived() -> bool:
        return any(
            (e.get("event") == "disconnect" and e.get("call_id") == answer["pc_id"])
            or (e.get("event") == "request_refused" and e.get("code") == "unknown_call")
            for e in echo_agent_process.log_events()[started:]
        )

    assert wait_until(disconnect_arrived, timeout_s=10)
    assert wait_until(lambda: ping_status(echo_agent_process.url) == "Healthy", timeout_s=15)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"mode": "bogus"}, 'config.json: "mode" must be "local" or "cloud"'),
        ({"mode": "cloud", "region": "us-east-1"}, 'config.json: "runtimeArn" must be a non-empty string'),
    ],
)
def test_a_bad_config_json_is_reported_in_plain_words(
    open_page: Any, local_site: Any, config: dict[str, Any], message: str
) -> None:
    local_site.config = config
    local_site.headers = {}
    page = open_page(local_site.url)
    wait_for_state(page, "failed")
    assert page.text_content("#error") == message
    assert page.is_disabled("#connect")


@pytest.mark.parametrize(
    ("expires_in", "expected"), [(31, ["ice_config", "ice_config", "offer"]), (300, ["ice_config", "offer"])]
)
def test_a_warm_ice_config_is_used_only_while_its_credentials_have_life_left(
    open_page: Any, local_site: Any, echo_agent: str, expires_in: int, expected: list[str]
) -> None:
    # The agent says how long its TURN credentials live (KVS: 300 s); the client keeps 30 s for the
    # call itself, so an ice_config with 31 s left is stale after one second and fetched again.
    def with_expiry(route: Any) -> None:
        if '"ice_config"' not in (route.request.post_data or ""):
            route.continue_()
            return
        # The local agent's own reply (no ICE servers) with an expiry. Answered here rather than fetched
        # and amended: a fetched response can be disposed under the handler when the page goes away.
        route.fulfill(json={"iceServers": [], "iceTransportPolicy": "all", "expiresIn": expires_in})

    local_site.config = local_up.local_config(echo_agent)
    local_site.headers = {"Content-Security-Policy": local_up.local_content_security_policy(echo_agent)}
    page = open_page(local_site.url, before_load=lambda context: context.route("**/invocations", with_expiry))
    wait_for_state(page, "ready")
    assert wait_until(lambda: [i.action for i in page.invocations] == ["ice_config"], timeout_s=10)
    time.sleep(1.5)
    connect(page)
    assert [i.action for i in page.invocations] == expected
    page.click("#hang-up")
    wait_for_state(page, "ended")
