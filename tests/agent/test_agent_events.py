"""Events to the browser over the "events" data channel, driven by a scripted voice in-process."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from agent_inprocess import serve_in_process
from voice_agent.voices.base import VoiceOutput, error_event, transcript_event

from tests.support import signals
from tests.support.rtc_client import RtcCaller, SignalingError

pytestmark = pytest.mark.timeout(60)


class ScriptedSession:
    """Speaks two seconds of tone, then the caller barges in half a second later."""

    def __init__(self, output: VoiceOutput) -> None:
        self.output = output
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    async def start(self) -> None:
        self.task = asyncio.ensure_future(self.script())

    async def script(self) -> None:
        await asyncio.sleep(1.0)  # let the events channel open
        self.output.send_event(transcript_event(role="user", text="hello", final=True))
        self.output.play(signals.tone(600, 2.0, rate=24_000).tobytes())
        self.output.send_event(transcript_event(role="assistant", text="Hi there", final=False))
        await asyncio.sleep(0.5)
        self.output.clear()
        self.output.send_event(error_event(code="demo", message="a message the user should see"))

    async def send_audio(self, pcm: bytes) -> None:
        pass

    async def close(self) -> None:
        self.closed = True
        if self.task is not None:
            self.task.cancel()


class ScriptedVoice:
    name = "scripted"
    paced_by_caller = False

    def __init__(self) -> None:
        self.sessions: list[ScriptedSession] = []

    def open_session(self, *, call_id: str, output: VoiceOutput) -> ScriptedSession:
        session = ScriptedSession(output)
        self.sessions.append(session)
        return session


async def test_state_transcript_and_error_events_reach_the_browser_and_barge_in_stops_audio() -> None:
    voice = ScriptedVoice()
    async with serve_in_process(voice=voice) as (url, _):
        caller = RtcCaller(url)
        try:
            await caller.connect()
            await caller.wait_for_event(lambda e: e.get("type") == "error", within=20)
            await asyncio.sleep(0.5)
            events: list[dict[str, Any]] = list(caller.events)
            received = caller.recorder.samples()
        finally:
            await caller.disconnect()

    states = [e["state"] for e in events if e["type"] == "state"]
    assert states[:4] == ["listening", "agent_speaking", "interrupted", "listening"]
    assert {"type": "transcript", "role": "user", "text": "hello", "final": True} in events
    assert {"type": "transcript", "role": "assistant", "text": "Hi there", "final": False} in events
    assert {"type": "error", "code": "demo", "message": "a message the user should see"} in events
    assert voice.sessions and voice.sessions[0].closed
    # About half a second of the two-second answer was heard: the rest was cleared at once.
    loud = np.flatnonzero(np.abs(received.astype(np.int32)) > 3000)
    heard = (loud[-1] - loud[0]) / 48_000
    assert 0.3 < heard < 1.0, heard


class BrokenSession(ScriptedSession):
    async def start(self) -> None:
        raise ConnectionError("model stream refused")


class BrokenVoice(ScriptedVoice):
    def open_session(self, *, call_id: str, output: VoiceOutput) -> ScriptedSession:
        session = BrokenSession(output)
        self.sessions.append(session)
        return session


async def test_a_voice_that_cannot_start_fails_the_offer_with_503_and_leaves_nothing_behind() -> None:
    voice = BrokenVoice()
    async with serve_in_process(voice=voice) as (url, app):
        caller = RtcCaller(url)
        try:
            with pytest.raises(SignalingError) as refused:
                await caller.connect()
        finally:
            await caller.close()
        assert refused.value.status == 503
        assert refused.value.body["error"]["code"] == "voice_unavailable"
        assert "model stream refused" in refused.value.body["error"]["message"]
        assert len(app.state.registry) == 0 and not app.state.registry.busy
        assert voice.sessions[0].closed  # the half-made call released its session
