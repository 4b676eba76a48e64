"""Relay-only through a real coturn: the browser's end of the selected pair is a TURN relay candidate."""

from __future__ import annotations

import time
from typing import Any

import pytest
from web_page_probes import selected_candidate_pair, wait_for_call_up, wait_for_remote_audio, wait_for_state
from web_support import load_local_up

pytestmark = pytest.mark.browser

local_up = load_local_up()


def test_relay_only_call_uses_a_relay_candidate_on_the_browser_side(
    open_page: Any, local_site: Any, relay_agent: str
) -> None:
    local_site.config = {**local_up.local_config(relay_agent), "relayOnly": True}
    local_site.headers = {}
    page = open_page(local_site.url)
    wait_for_state(page, "ready")
    assert page.is_checked("#relay-only")
    started = time.monotonic()
    page.click("#connect")
    wait_for_call_up(page)
    print(f"relay-only local call: Connect to call up in {time.monotonic() - started:.2f} s")

    assert page.evaluate("window.__pcs[0].getConfiguration().iceTransportPolicy") == "relay"
    pair = selected_candidate_pair(page)
    assert pair is not None and pair["local"] == "relay", pair
    assert page.get_attribute("#call-state", "data-route") == "relay"
    assert "via relay" in page.text_content("#call-state")
    assert wait_for_remote_audio(page)["audioLevel"] > 0.01
    assert [i.action for i in page.invocations] == ["ice_config", "offer"]
    page.shot("relay")
    page.click("#hang-up")
    wait_for_state(page, "ended")


def test_the_relay_toggle_turns_relay_off_in_local_mode(
    open_page: Any, local_site: Any, relay_agent: str
) -> None:
    local_site.config = {**local_up.local_config(relay_agent), "relayOnly": True}
    local_site.headers = {}
    page = open_page(local_site.url)
    wait_for_state(page, "ready")
    page.click("summary")
    page.uncheck("#relay-only")
    page.click("#connect")
    wait_for_call_up(page)
    assert page.evaluate("window.__pcs[0].getConfiguration().iceTransportPolicy") == "all"
    page.click("#hang-up")
    wait_for_state(page, "ended")
