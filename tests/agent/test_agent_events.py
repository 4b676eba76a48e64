"""Events to the browser over the "events" data channel, driven by a scripted voice in-process."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from agent_calls import refused_call
from agent_inprocess import RecordingVoice, serve_in_process
from nova_sonic_fakes import wait_until
from voice_agent.calls import Call
from voice_agent.voices.base import VoiceOutput, error_event, transcript_event

from testbed.caller import RtcCaller
from tests.support import signals

pytestmark = pytest.mark.timeout(60)


#: The barge-in comes once this many 20 ms frames of the answer have been sent (half a second).
FRAMES_BEFORE_BARGE_IN = 25


class ScriptedSession:
    """Speaks two seconds of tone, then the caller barges in after half a second of it was sent.

    Driven by the call's own signals, not by sleeps, so a loaded machine changes nothing: the script
    starts when the events channel is open and barges in after a count of frames, not of seconds.
    """

    def __init__(self, output: VoiceOutput) -> None:
        self.output = output
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    async def start(self) -> None:
        self.task = asyncio.ensure_future(self.script())

    async def script(self) -> None:
        call = self.output
        assert isinstance(call, Call)  # the agent hands each session its call as the output
        await call.events_open.wait()  # "listening" has been sent: the browser sees what follows
        self.output.send_event(transcript_event(role="user", text="hello", final=True))
        sent_before = call.output.audio_frames_sent
        self.output.play(signals.tone(600, 2.0, rate=24_000).tobytes())
        self.output.send_event(transcript_event(role="assistant", text="Hi there", final=False))
        await wait_until(
            lambda: call.output.audio_frames_sent - sent_before >= FRAMES_BEFORE_BARGE_IN,
            what="half a second of the answer sent",
            seconds=20,
        )
        self.output.clear()
        self.output.send_event(
            error_event(code="demo", message="a message the user should see", error_id="e-1")
        )

    async def send_audio(self, pcm: bytes) -> None:
        pass

    async def close(self) -> None:
        self.closed = True
        if self.task is not None:
            self.task.cancel()


async def test_state_transcript_and_error_events_reach_the_browser_and_barge_in_stops_audio() -> None:
    voice = RecordingVoice(ScriptedSession)
    async with serve_in_process(voice=voice) as (url, _):
        caller = RtcCaller(url)
        try:
            await caller.connect()
            await caller.wait_for_event(lambda e: e.get("type") == "error", within=20)
            # Listen to one more second of the stream (counted in frames, not in wall time): had the
            # barge-in not cleared the answer, its rest would be heard here.
            frames_at_barge_in = len(caller.recorder.frame_lengths)
            await wait_until(
                lambda: len(caller.recorder.frame_lengths) >= frames_at_barge_in + 50,
                what="a second of audio after the barge-in",
                seconds=20,
            )
            events: list[dict[str, Any]] = list(caller.events)
            received = caller.recorder.samples()
        finally:
            await caller.disconnect()

    states = [e["state"] for e in events if e["type"] == "state"]
    assert states[:4] == ["listening", "agent_speaking", "interrupted", "listening"]
    assert {"type": "transcript", "role": "user", "text": "hello", "final": True} in events
    assert {"type": "transcript", "role": "assistant", "text": "Hi there", "final": False} in events
    error = {"type": "error", "code": "demo", "message": "a message the user should see", "id": "e-1"}
    assert error in events
    assert voice.sessions and voice.sessions[0].closed
    # About half a second of the two-second answer was heard: the rest was cleared at once.
    loud = np.flatnonzero(np.abs(received.astype(np.int32)) > 3000)
    heard = (loud[-1] - loud[0]) / 48_000
    assert 0.3 < heard < 1.0, heard
    # And the check could fail: at least half a second more of the stream came after the last loud
    # sample, long enough for the uncleared rest of the answer to be heard.
    assert received.size - loud[-1] > 24_000, (received.size, loud[-1])


class BrokenSession(ScriptedSession):
    async def start(self) -> None:
        raise ConnectionError("model stream refused")


async def test_a_voice_that_cannot_start_fails_the_offer_with_503_and_leaves_nothing_behind() -> None:
    voice = RecordingVoice(BrokenSession)
    async with serve_in_process(voice=voice) as (url, app):
        refused = await refused_call(url)
        assert refused.status == 503
        assert refused.body["error"]["code"] == "voice_unavailable"
        assert refused.body["error"]["message"] == "the voice could not start right now; try again"
        assert len(app.state.registry) == 0 and not app.state.registry.busy
        assert voice.sessions[0].closed  # the half-made call released its session
