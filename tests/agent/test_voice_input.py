"""The caller's audio on its way to the voice: in order, bounded, the oldest dropped when the voice lags."""

from __future__ import annotations

import asyncio

from voice_agent.call_lifecycle import VoiceInput


async def test_frames_reach_the_voice_in_order_and_are_counted() -> None:
    voice_input = VoiceInput(capacity=4)
    heard: list[bytes] = []

    async def send(pcm: bytes) -> None:
        heard.append(pcm)

    pump = asyncio.ensure_future(voice_input.pump(send))
    for n in range(3):
        voice_input.put(bytes([n]) * 640)
    await asyncio.sleep(0.01)
    pump.cancel()
    assert [pcm[0] for pcm in heard] == [0, 1, 2]
    assert voice_input.bytes_sent == 3 * 640
    assert voice_input.dropped == 0


async def test_a_voice_that_falls_behind_loses_the_oldest_audio_not_real_time() -> None:
    voice_input = VoiceInput(capacity=4)
    for n in range(10):  # nothing takes frames yet: the voice is stalled
        voice_input.put(bytes([n]) * 640)
    heard: list[bytes] = []

    async def send(pcm: bytes) -> None:
        heard.append(pcm)

    pump = asyncio.ensure_future(voice_input.pump(send))
    await asyncio.sleep(0.01)
    pump.cancel()
    assert [pcm[0] for pcm in heard] == [6, 7, 8, 9]
    assert voice_input.dropped == 6
