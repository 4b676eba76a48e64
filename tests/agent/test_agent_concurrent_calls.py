"""Five concurrent echo calls: each caller hears only its own audio, at real time."""

from __future__ import annotations

import asyncio

import pytest
from agent_calls import echo_round_trip, wait_for_call_end
from voice_agent.call_lifecycle import INPUT_QUEUE_FRAMES

from testbed.caller import RtcCaller
from testbed.media import SignalSource
from tests.support import signals
from tests.support.agent_process import AgentProcess

pytestmark = pytest.mark.timeout(180)

FREQUENCIES = [350.0, 550.0, 750.0, 950.0, 1150.0]
# Between the callers' tones: what a 32 kbit/s voice codec's own noise puts there, to compare with.
UNUSED = [450.0, 650.0, 850.0, 1050.0]
SECONDS = 2.0


async def test_five_concurrent_callers_each_hear_only_themselves(echo_agent: AgentProcess) -> None:
    callers = [RtcCaller(echo_agent.url, source=SignalSource(signals.tone(f, SECONDS))) for f in FREQUENCIES]
    try:
        await asyncio.gather(*(caller.connect() for caller in callers))
        received = await asyncio.gather(*(echo_round_trip(caller, settle=0.3) for caller in callers))
    finally:
        await asyncio.gather(*(caller.disconnect() for caller in callers))

    for frequency, audio in zip(FREQUENCIES, received, strict=True):
        onsets = signals.find_onsets(audio)
        assert onsets, f"caller at {frequency} Hz heard nothing back"
        # One steady second from the middle of the echo.
        steady = audio[onsets[0] + 24_000 : onsets[0] + 72_000]
        own = signals.tone_level_dbfs(steady, frequency)
        assert own > -25, f"caller at {frequency} Hz hears its echo at only {own:.1f} dBFS"
        codec_noise = max(signals.tone_level_dbfs(steady, f) for f in UNUSED)
        for other in FREQUENCIES:
            if other != frequency:
                leak = signals.tone_level_dbfs(steady, other)
                # A shared resampler leaks other callers at about -43 dBFS; separate ones leak nothing,
                # so another caller's tone is no louder than the codec's noise where nobody is.
                assert leak < max(codec_noise + 10, -80), (
                    f"caller at {frequency} Hz hears the {other} Hz caller at {leak:.1f} dBFS "
                    f"(codec noise {codec_noise:.1f} dBFS)"
                )
        # Before its echo starts, a caller hears digital silence (no one else's audio).
        assert signals.level_dbfs(audio[: max(onsets[0] - 4_800, 0)]) < -80


async def test_the_voice_hears_16_khz_at_real_time_with_no_padding(echo_agent: AgentProcess) -> None:
    callers = [RtcCaller(echo_agent.url, source=SignalSource(signals.tone(f, 1.0))) for f in FREQUENCIES]
    try:
        await asyncio.gather(*(caller.connect() for caller in callers))
        await asyncio.gather(*(echo_round_trip(caller, settle=0.2) for caller in callers))
    finally:
        await asyncio.gather(*(caller.disconnect() for caller in callers))
    for caller in callers:
        ended = await asyncio.to_thread(wait_for_call_end, echo_agent, caller.pc_id or "")
        assert ended is not None
        # Every 20 ms input frame became exactly 320 samples (640 bytes) for the voice; padded planes
        # would make it 768 bytes (1.2x real time).
        assert ended["input_frames"] > 40
        # The voice also hears the receive path's concealment (a frame for every lost or late packet);
        # frames still queued when the call ended (at most INPUT_QUEUE_FRAMES, more of them on a loaded
        # machine) never reach it. Padding would push the bytes above 640 per delivered frame.
        delivered = ended["input_frames"] + ended["input"]["concealed"] - ended["input_dropped"]
        assert ended["voice_input_bytes"] % 640 == 0
        assert 640 * (delivered - INPUT_QUEUE_FRAMES) <= ended["voice_input_bytes"] <= 640 * delivered
