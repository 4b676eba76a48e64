"""TURN over TLS: where UDP is blocked, the browser calls relay-only through the `turns:` URI (TCP) that KVS
hands out. Chromium is given only coturn's TLS URI; coturn's certificate comes from a throwaway CA that the
browser's NSS database trusts (no certificate-ignoring flag). The same call over UDP TURN is the yardstick:
both print their connect time and echo delay."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest
from web_page_probes import (
    echo_delays_ms,
    selected_candidate_pair,
    wait_for_call_up,
    wait_for_quality_samples,
    wait_for_remote_audio,
    wait_for_state,
)
from web_support import load_local_up

from testbed.turn import TurnServer

pytestmark = pytest.mark.browser

local_up = load_local_up()

SELECTED_RELAY_PROTOCOL_JS = """
async () => {
  const stats = await window.__pcs[window.__pcs.length - 1].getStats();
  for (const report of stats.values()) {
    if (report.type === "transport" && report.selectedCandidatePairId) {
      return stats.get(stats.get(report.selectedCandidatePairId).localCandidateId).relayProtocol;
    }
  }
  return null;
}
"""


def relay_call(open_page: Any, local_site: Any, agent: str, turn: TurnServer, url: str) -> tuple[Any, float]:
    """A relay-only local call whose ice_config offers the browser only ``url``; returns the page, up, and
    the seconds from Connect to the call being up."""

    def only(route: Any) -> None:
        if '"ice_config"' not in (route.request.post_data or ""):
            route.continue_()
            return
        server = {"urls": [url], "username": turn.username, "credential": turn.credential}
        route.fulfill(json={"iceServers": [server], "iceTransportPolicy": "relay"})

    local_site.config = {**local_up.local_config(agent), "relayOnly": True}
    local_site.headers = {"Content-Security-Policy": local_up.local_content_security_policy(agent)}
    page = open_page(local_site.url, before_load=lambda context: context.route("**/invocations", only))
    wait_for_state(page, "ready")
    started = time.monotonic()
    page.click("#connect")
    wait_for_call_up(page)
    return page, time.monotonic() - started


def report(name: str, connect_s: float, delays: list[float]) -> None:
    echo = (
        f"echo delay median {statistics.median(delays):.0f} ms over {len(delays)}"
        if delays
        else "no echo timed"
    )
    print(f"{name}: Connect to call up in {connect_s * 1000:.0f} ms; {echo}")


def test_a_browser_given_only_turn_over_tls_connects_through_it_and_hears_the_echo(
    open_page: Any, local_site: Any, tls_relay_agent: str, tls_turn_server: TurnServer
) -> None:
    page, connect_s = relay_call(
        open_page, local_site, tls_relay_agent, tls_turn_server, tls_turn_server.tls_url
    )

    assert selected_candidate_pair(page)["local"] == "relay"
    assert page.evaluate(SELECTED_RELAY_PROTOCOL_JS) == "tls"
    assert wait_for_remote_audio(page)["audioLevel"] > 0.01
    panel = wait_for_quality_samples(page, 2)
    assert panel["Transport"] == "WebRTC via relay (TURN over TLS)"
    report("TURN over TLS", connect_s, echo_delays_ms(page))
    page.shot("tls-relay")
    page.click("#hang-up")
    wait_for_state(page, "ended")


def test_the_same_call_over_udp_turn_for_comparison(
    open_page: Any, local_site: Any, tls_relay_agent: str, tls_turn_server: TurnServer
) -> None:
    page, connect_s = relay_call(open_page, local_site, tls_relay_agent, tls_turn_server, tls_turn_server.url)

    assert page.evaluate(SELECTED_RELAY_PROTOCOL_JS) == "udp"
    assert wait_for_remote_audio(page)["audioLevel"] > 0.01
    report("TURN over UDP", connect_s, echo_delays_ms(page))
    page.click("#hang-up")
    wait_for_state(page, "ended")
