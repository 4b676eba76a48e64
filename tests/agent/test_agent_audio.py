"""The output track: 24 kHz voice audio paced in 20 ms frames, encoded for the caller."""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError
from voice_agent.audio import SILENT_FRAMES_BEFORE_REPEAT, PacedOutputTrack
from voice_agent.opus import OpusDecoder, OpusSettings

from tests.support import signals

pytestmark = pytest.mark.timeout(60)


def pcm24(samples: np.ndarray) -> bytes:
    return samples.astype(np.int16).tobytes()


def samples_of(frame: av.AudioFrame) -> np.ndarray:
    return frame.to_ndarray().reshape(-1)


async def test_an_empty_track_sends_silence_in_20_ms_frames_at_24_khz() -> None:
    track = PacedOutputTrack()
    frames = [await track.recv() for _ in range(3)]
    assert [f.samples for f in frames] == [480, 480, 480]
    assert [f.sample_rate for f in frames] == [24_000] * 3
    assert [f.pts for f in frames] == [0, 480, 960]
    assert not any(f.to_ndarray().any() for f in frames)


async def test_voice_audio_comes_out_at_its_pitch() -> None:
    track = PacedOutputTrack()
    track.write(pcm24(signals.tone(500, 0.5, rate=24_000)))
    out = np.concatenate([samples_of(await track.recv()) for _ in range(25)])
    assert abs(signals.dominant_frequency(out, rate=24_000) - 500) < 5
    assert signals.level_dbfs(out[2400:]) > -15


async def test_frames_are_paced_in_real_time() -> None:
    track = PacedOutputTrack()
    track.write(pcm24(signals.tone(500, 2.0, rate=24_000)))  # far more than is played below
    start = time.monotonic()
    for _ in range(26):
        await track.recv()
    # 26 frames: at least 25 intervals of 20 ms less one frame of allowed earliness.
    assert time.monotonic() - start >= 0.48
    assert track.buffered_seconds > 1.0  # a bursty voice keeps its backlog


async def test_clear_takes_effect_on_the_next_frame() -> None:
    track = PacedOutputTrack()
    track.write(pcm24(signals.tone(500, 1.0, rate=24_000)))
    assert (await track.recv()).to_ndarray().any()
    track.clear()
    assert not (await track.recv()).to_ndarray().any()
    assert track.buffered_seconds == 0


async def test_the_buffer_is_bounded() -> None:
    track = PacedOutputTrack(max_buffer_seconds=2.0)
    for _ in range(10):
        track.write(pcm24(signals.tone(500, 1.0, rate=24_000)))
    assert track.buffered_seconds <= 2.0


async def test_speaking_state_follows_the_audio() -> None:
    changes: list[bool] = []
    track = PacedOutputTrack(on_speaking=changes.append)
    await track.recv()
    track.write(pcm24(signals.tone(500, 0.04, rate=24_000)))
    for _ in range(5):
        await track.recv()
    assert changes == [True, False]


async def test_a_live_source_written_between_frames_goes_out_in_the_next_one() -> None:
    track = PacedOutputTrack(live=True)
    assert not (await track.recv()).to_ndarray().any()  # idle: silence, the next frame is due in 20 ms
    # Written before the next recv(), not on a timer racing its 20 ms deadline: on a loaded machine a
    # timer can fire late, and this test is about where the audio goes, not about the scheduler.
    track.write(pcm24(signals.tone(500, 0.02, rate=24_000)))
    frame = await track.recv()
    assert frame.to_ndarray().any()
    assert track.buffered_seconds == 0  # all of it went out in that one frame


async def test_a_live_source_does_not_keep_a_standing_backlog() -> None:
    track = PacedOutputTrack(live=True)
    chunk = pcm24(signals.tone(500, 0.02, rate=24_000))
    for _ in range(5):  # a burst: 100 ms queued at once
        track.write(chunk)
    for _ in range(PacedOutputTrack.STANDING_BACKLOG_FRAMES + 5):
        track.write(chunk)  # then real time: one frame in, one frame out
        await track.recv()
    assert track.buffered_seconds < 0.02 + 1e-9
    assert track.trimmed_bytes > 0


async def test_a_stopped_track_ends_recv() -> None:
    track = PacedOutputTrack()
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()
    await asyncio.gather(waiting, return_exceptions=True)


# --- with the encoder: what aiortc sends as it is ---------------------------------------------


def encoded_track(**options: object) -> PacedOutputTrack:
    return PacedOutputTrack(encoder=OpusSettings().encoder(24_000), **options)  # type: ignore[arg-type]


async def test_with_an_encoder_the_track_hands_aiortc_opus_packets_on_the_48_khz_rtp_clock() -> None:
    track = encoded_track()
    track.write(pcm24(signals.tone(500, 0.5, rate=24_000)))
    packets = [await track.recv() for _ in range(20)]
    assert all(isinstance(p, av.Packet) for p in packets)
    assert [p.pts for p in packets[:3]] == [0, 960, 1920]
    assert all(p.time_base == fractions.Fraction(1, 48_000) for p in packets)
    decoder = OpusDecoder(sample_rate=24_000)
    pcm = np.frombuffer(b"".join(decoder.decode(bytes(p)) for p in packets), dtype=np.int16)
    assert len(pcm) == 20 * 480
    assert abs(signals.dominant_frequency(pcm[2400:], rate=24_000) - 500) < 5


async def test_a_long_silence_costs_no_encoding_and_speech_afterwards_is_encoded_again() -> None:
    track = encoded_track()
    silent = [bytes(await track.recv()) for _ in range(SILENT_FRAMES_BEFORE_REPEAT + 20)]
    # The encoder ran until the decoder had heard enough silence; then its last silent packet again.
    repeated = silent[SILENT_FRAMES_BEFORE_REPEAT:]
    assert set(repeated) == {silent[SILENT_FRAMES_BEFORE_REPEAT - 1]}
    assert track.silence_repeats == 20
    track.write(pcm24(signals.tone(500, 0.2, rate=24_000)))
    speech = [bytes(await track.recv()) for _ in range(10)]
    assert all(len(p) > 20 for p in speech[1:])
    decoder = OpusDecoder(sample_rate=24_000)
    decoded = [decoder.decode(p) for p in silent + speech]
    assert all(len(d) == 960 for d in decoded)
    # Silence decodes as silence (libopus may leave a least-significant bit of noise).
    assert np.abs(np.frombuffer(b"".join(decoded[: len(silent)]), dtype=np.int16)).max() <= 2


async def test_a_live_queue_over_its_bound_drops_silence_before_speech() -> None:
    track = PacedOutputTrack(live=True)
    tone = pcm24(signals.tone(500, 0.02, rate=24_000))
    silence = bytes(len(tone))
    bound = PacedOutputTrack.LIVE_MAX_BACKLOG_FRAMES
    # An input stall released at once: speech and silence interleaved, twice the bound.
    for n in range(2 * bound):
        track.write(tone if n % 2 == 0 else silence)
    assert track.buffered_seconds <= bound * 0.02 + 1e-9
    kept = [samples_of(await track.recv()) for _ in range(bound)]
    assert all(frame.any() for frame in kept)  # every frame left is speech: the silence went first
