"""Chromium on a lossy network: the agent recovers what is lost from the browser's in-band FEC.

The browser reaches the loopback coturn through the impairment relay (its leg only, both peers
relay-only, as from lossy Wi-Fi to KVS TURN). The agent's answer asks Chromium for Opus with in-band
FEC (useinbandfec=1); Chromium turns it on once the agent's RTCP reports show loss, and the agent's
playout recovers a lost packet from the next one's FEC instead of concealing it. The agent does not
ask a browser for lost packets again (its offer says it does FEC): Chromium would answer, but the
retransmissions would cost a round trip of delay and hide the loss that turns its FEC on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from web_page_probes import wait_for_call_up, wait_for_remote_audio, wait_for_state, wait_until
from web_site import WebSite
from web_support import load_local_up

from testbed.impair import Impairment, RelayThread
from testbed.turn import TurnServer
from tests.support.agent_process import AgentProcess

pytestmark = pytest.mark.browser

local_up = load_local_up()
CALL_SECONDS = 12.0
"""Long enough for Chromium to see the loss in the agent's receiver reports and send FEC for a while."""


@pytest.fixture(scope="module")
def lossy_agent(turn_server: TurnServer, local_site: WebSite) -> Iterator[AgentProcess]:
    env = {**turn_server.ice_server_env(), "VOICE_AGENT_CORS_ORIGINS": local_site.url}
    with AgentProcess.start(voice="echo", ice_servers="static", relay_only=True, env=env) as agent:
        yield agent


def test_chromium_on_a_lossy_network_is_recovered_from_fec_with_no_delay_growth(
    open_page: Any, local_site: WebSite, lossy_agent: AgentProcess, turn_server: TurnServer
) -> None:
    towards_agent = Impairment(loss=0.08, delay=0.02)
    with RelayThread(
        turn_server.port, upstream=towards_agent, downstream=Impairment(delay=0.02), seed=5
    ) as relay:
        # The browser's TURN server is the relay; the agent uses coturn directly.
        ice_config = {
            "iceServers": [
                {
                    "urls": [f"turn:127.0.0.1:{relay.port}?transport=udp"],
                    "username": turn_server.username,
                    "credential": turn_server.credential,
                }
            ],
            "iceTransportPolicy": "relay",
        }

        def through_relay(route: Any) -> None:
            if '"ice_config"' in (route.request.post_data or ""):
                route.fulfill(json=ice_config)
            else:
                route.continue_()

        local_site.config = {**local_up.local_config(lossy_agent.url), "relayOnly": True}
        local_site.headers = {}
        page = open_page(
            local_site.url, before_load=lambda context: context.route("**/invocations", through_relay)
        )
        wait_for_state(page, "ready")
        page.click("#connect")
        wait_for_call_up(page)
        assert wait_for_remote_audio(page)["audioLevel"] > 0.01
        time.sleep(CALL_SECONDS)
        page.shot("lossy-call")
        page.click("#hang-up")
        wait_for_state(page, "ended")
        dropped = relay.relay.upstream_stats.dropped

    assert wait_until(lambda: _last_call(lossy_agent) is not None, timeout_s=15)
    ended = _last_call(lossy_agent)
    assert ended is not None
    stats = ended["input"]
    lost = stats["recovered"] + stats["concealed"] - stats["inserted"]
    print(
        f"lossy Chromium call: {dropped} datagrams dropped towards the agent; "
        f"{stats['recovered']} packets recovered from FEC, {lost - stats['recovered']} concealed; "
        f"playout delay {stats['delay_ms']} ms (target {stats['target_delay_ms']} ms); {stats}"
    )
    assert dropped > 20
    assert stats["recovered"] > 0, "Chromium sent no FEC the agent could use"
    # Chromium turns FEC on a few seconds in, once the agent's reports show loss (later when its
    # bandwidth estimate is low, as on a loaded machine); every FEC recovery is a packet not concealed.
    assert stats["fec_packets"] > 0
    assert 0 < stats["recovered"] <= lost
    # No delay growth: playout ends where its target is (the jitter's, which a loaded machine raises),
    # within the one-frame band above it, not a loss's worth more.
    assert stats["delay_ms"] <= stats["target_delay_ms"] + 25


def _last_call(agent: AgentProcess) -> dict[str, Any] | None:
    ended = [e for e in agent.log_events() if e.get("event") == "call_ended"]
    return ended[-1] if ended else None
