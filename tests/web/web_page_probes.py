"""What the browser tests read from a page: signaling requests, call state, WebRTC stats."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

CALL_TIMEOUT_MS = 45_000


@dataclass
class Invocation:
    """One signaling POST as the browser sent it."""

    action: str
    data: dict[str, Any]
    headers: dict[str, str]


def record_invocations(page: Any) -> list[Invocation]:
    """Every POST to an /invocations URL (local agent or AgentCore endpoint), in order."""
    seen: list[Invocation] = []

    def on_request(request: Any) -> None:
        if request.method != "POST" or "/invocations" not in request.url:
            return
        try:
            payload = json.loads(request.post_data or "{}")
        except ValueError:
            payload = {}
        seen.append(Invocation(payload.get("action", "?"), payload.get("data") or {}, request.headers))

    page.on("request", on_request)
    return seen


def wait_for_state(page: Any, *states: str, timeout_ms: int = CALL_TIMEOUT_MS) -> str:
    page.wait_for_function(
        "states => states.includes(document.getElementById('call-state').dataset.state)",
        arg=list(states),
        timeout=timeout_ms,
    )
    return page.get_attribute("#call-state", "data-state")


# States the page shows once a call is up; the echo voice flips between the first two as it echoes.
CALL_UP_STATES = ("listening", "agent_speaking", "interrupted")


def wait_for_call_up(page: Any, timeout_ms: int = CALL_TIMEOUT_MS) -> str:
    return wait_for_state(page, *CALL_UP_STATES, timeout_ms=timeout_ms)


def state_log(page: Any) -> list[str]:
    """Every text the call-state line has shown, in order (recorded by the page instrumentation)."""
    return page.evaluate("window.__stateLog")


INBOUND_AUDIO_JS = """
async () => {
  const pc = window.__pcs[window.__pcs.length - 1];
  if (!pc) return null;
  const stats = await pc.getStats();
  for (const report of stats.values()) {
    if (report.type === "inbound-rtp" && report.kind === "audio") {
      return {
        packetsReceived: report.packetsReceived ?? 0,
        audioLevel: report.audioLevel ?? 0,
        totalAudioEnergy: report.totalAudioEnergy ?? 0,
      };
    }
  }
  return null;
}
"""

SELECTED_PAIR_JS = """
async () => {
  const pc = window.__pcs[window.__pcs.length - 1];
  const stats = await pc.getStats();
  let pair;
  for (const report of stats.values()) {
    if (report.type === "transport" && report.selectedCandidatePairId) {
      pair = stats.get(report.selectedCandidatePairId);
    }
  }
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  return { local: local.candidateType, remote: remote.candidateType, state: pair.state };
}
"""


def wait_for_remote_audio(page: Any, *, timeout_s: float = 30.0) -> dict[str, float]:
    """Polls getStats until audio packets with a non-silent level arrived; returns the best reading."""
    best: dict[str, float] = {"packetsReceived": 0, "audioLevel": 0.0, "totalAudioEnergy": 0.0}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reading = page.evaluate(INBOUND_AUDIO_JS)
        if reading:
            best = {
                "packetsReceived": reading["packetsReceived"],
                "audioLevel": max(best["audioLevel"], reading["audioLevel"]),
                "totalAudioEnergy": reading["totalAudioEnergy"],
            }
            if best["packetsReceived"] > 50 and best["audioLevel"] > 0.01 and best["totalAudioEnergy"] > 0:
                return best
        page.wait_for_timeout(250)
    return best


def selected_candidate_pair(page: Any) -> dict[str, str] | None:
    return page.evaluate(SELECTED_PAIR_JS)


def send_agent_event(page: Any, event: dict[str, Any]) -> None:
    """Delivers a message on the page's "events" channel as if the agent had sent it."""
    script = "e => window.__channels[0].dispatchEvent(new MessageEvent('message', {data: JSON.stringify(e)}))"
    page.evaluate(script, event)


def wait_until(predicate: Any, *, timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()
