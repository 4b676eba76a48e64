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


def csp_problems(page: Any) -> list[str]:
    """Every CSP violation the page reported or logged (instrumentation and console)."""
    reported = page.evaluate("window.__cspViolations")
    logged = [m for m in page.console_messages_seen if "Content Security Policy" in m or "Refused to" in m]
    return reported + logged


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


def websocket_audio(page: Any) -> dict[str, int] | None:
    """Frames and peak |sample| of the agent's audio on the page's last WebSocket (instrumentation)."""
    return page.evaluate("window.__sockets.length ? window.__sockets.at(-1).__audio : null")


def wait_for_websocket_audio(page: Any, *, timeout_s: float = 20.0) -> dict[str, int]:
    """Polls until the agent's echo arrived over the socket (50 frames, a peak above -30 dBFS)."""
    reading: dict[str, int] | None = None

    def heard() -> bool:
        nonlocal reading
        reading = websocket_audio(page)
        return bool(reading) and reading["frames"] > 50 and reading["peak"] > 1000

    wait_until(heard, timeout_s=timeout_s)
    return reading or {"frames": 0, "peak": 0}


def quality_panel(page: Any) -> dict[str, str]:
    """The quality panel's figures by label, as the page shows them."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#quality dl > div')].map(
             d => [d.querySelector('dt').textContent, d.querySelector('dd').textContent]))"""
    )


def wait_for_quality_samples(page: Any, count: int, *, timeout_ms: int = 15_000) -> dict[str, str]:
    samples = "n => Number(document.getElementById('quality').dataset.samples || 0) >= n"
    page.wait_for_function(samples, arg=count, timeout=timeout_ms)
    return quality_panel(page)


# Onsets of the caller's tone (the fake microphone: 0.5 s on, 0.25 s off) on the microphone track and on
# the agent's track, timed in one AudioContext; each echo's delay is its onset minus the microphone's.
ECHO_DELAY_JS = """
async (seconds) => {
  const pc = window.__pcs[window.__pcs.length - 1];
  const context = new AudioContext();
  const onsets = { local: [], remote: [] };
  const watch = (track, key) => {
    const source = context.createMediaStreamSource(new MediaStream([track]));
    const processor = context.createScriptProcessor(256, 1, 1);
    let quiet = 0;
    processor.onaudioprocess = (event) => {
      const x = event.inputBuffer.getChannelData(0);
      let sum = 0;
      for (const v of x) sum += v * v;
      if (Math.sqrt(sum / x.length) > 0.05) {
        if (quiet >= 20) onsets[key].push(event.playbackTime);  // after 100 ms of quiet
        quiet = 0;
      } else quiet++;
    };
    source.connect(processor);
    processor.connect(context.destination);
  };
  watch(pc.getSenders()[0].track, "local");
  watch(pc.getReceivers()[0].track, "remote");
  await new Promise((r) => setTimeout(r, seconds * 1000));
  await context.close();
  return onsets;
}
"""


def echo_delays_ms(page: Any, *, seconds: float = 4.0) -> list[float]:
    """The delay of each echo of the caller's tone heard in ``seconds`` of a WebRTC call."""
    onsets = page.evaluate(ECHO_DELAY_JS, seconds)
    delays = []
    for heard in onsets["remote"]:
        before = [sent for sent in onsets["local"] if 0 <= heard - sent < 0.7]
        if before:
            delays.append((heard - max(before)) * 1000)
    return delays
