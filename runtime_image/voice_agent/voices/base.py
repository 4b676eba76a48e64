"""The one small interface every voice implements.

A call owns one voice session. The call feeds it the caller's audio as 16 kHz mono signed 16-bit
little-endian PCM, and the session answers through the call's ``VoiceOutput``: 24 kHz mono s16le PCM
for the caller to hear, ``clear()`` when the caller barges in, and events for the browser.

Call state (listening, agent speaking, interrupted) is derived by the call from its output track and
``clear()``, so voices only report what only they know: transcripts, and errors a user should see.
"""

from __future__ import annotations

from typing import Any, Protocol

INPUT_SAMPLE_RATE = 16_000
"""What every voice receives: 16 kHz mono s16le, normally 20 ms (320 samples, 640 bytes) per chunk."""
OUTPUT_SAMPLE_RATE = 24_000
"""What every voice produces: 24 kHz mono s16le, in chunks of any length."""


class VoiceOutput(Protocol):
    """Where a voice session sends what it produces. Implemented by the call."""

    def play(self, pcm: bytes) -> None:
        """Queue 24 kHz mono s16le audio for the caller."""

    def clear(self) -> None:
        """Barge-in: drop everything queued; takes effect on the next output frame."""

    def send_event(self, event: dict[str, Any]) -> None:
        """Send a JSON-serialisable event to the browser (``transcript`` or ``error``, see below)."""


class VoiceSession(Protocol):
    """One conversation with a voice, for the length of one call."""

    async def start(self) -> None:
        """Open whatever the voice needs (a model stream, a resampler). Raises on failure."""

    async def send_audio(self, pcm: bytes) -> None:
        """Feed 16 kHz mono s16le audio from the caller. Must not block the event loop."""

    async def close(self) -> None:
        """End the conversation cleanly and release everything. Safe to call twice."""


class Voice(Protocol):
    """A kind of voice (``echo``, ``nova-sonic``): makes one session per call."""

    name: str
    paced_by_caller: bool
    """True when the voice answers at the caller's own pace (``echo``): its audio leaves as soon as a
    whole frame is there, and a standing backlog is trimmed. False for a model that sends speech in
    bursts faster than real time (``nova-sonic``): the output track paces it by the clock."""

    def open_session(self, *, call_id: str, output: VoiceOutput) -> VoiceSession:
        """Create (not start) a session for one call. No I/O here."""


def transcript_event(*, role: str, text: str, final: bool) -> dict[str, Any]:
    """``{"type": "transcript", "role": "user"|"assistant", "text": ..., "final": bool}``"""
    return {"type": "transcript", "role": role, "text": text, "final": final}


def error_event(*, code: str, message: str, error_id: str) -> dict[str, Any]:
    """``{"type": "error", "code": ..., "message": ..., "id": ...}``: something the user should see.

    ``message`` is fixed text for the user, never an exception's; the voice logs the detail on a
    line with the same ``error_id`` (``voice_agent.errors.new_error_id``).
    """
    return {"type": "error", "code": code, "message": message, "id": error_id}


def state_event(state: str) -> dict[str, Any]:
    """``{"type": "state", "state": "listening"|"agent_speaking"|"interrupted"}``, sent by the call."""
    return {"type": "state", "state": state}
