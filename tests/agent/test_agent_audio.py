"""Audio plumbing: 48 kHz Opus frames to 16 kHz for the voice, 24 kHz voice audio to a paced track."""

from __future__ import annotations

import asyncio
import time

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError
from voice_agent.audio import InputResampler, PacedOutputTrack

from tests.support import signals

pytestmark = pytest.mark.timeout(60)


def opus_like_frame(samples: np.ndarray, pts: int | None) -> av.AudioFrame:
    """What aiortc's Opus decoder hands over: s16 stereo 48 kHz, 960 samples."""
    stereo = np.repeat(samples.astype(np.int16), 2).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
    frame.sample_rate = 48_000
    frame.pts = pts
    return frame


def pcm24(samples: np.ndarray) -> bytes:
    return samples.astype(np.int16).tobytes()


def test_every_20_ms_frame_becomes_exactly_320_samples_at_16_khz() -> None:
    resampler = InputResampler()
    source = signals.tone(440, 1.0)
    chunks = [resampler.resample(opus_like_frame(source[i : i + 960], i)) for i in range(0, 48_000, 960)]
    assert [len(c) for c in chunks] == [640] * 50  # no plane padding, no short first chunk
    pcm = np.frombuffer(b"".join(chunks), dtype=np.int16)
    assert abs(signals.dominant_frequency(pcm[1600:], rate=16_000) - 440) < 5


def test_input_survives_pts_gaps_from_packet_loss() -> None:
    resampler = InputResampler()
    source = signals.tone(440, 0.2)
    pts_values = [0, 960, 9600, 10_560, 2_000_000, 3]
    sizes = [len(resampler.resample(opus_like_frame(source[:960], pts))) for pts in pts_values]
    assert sizes == [640] * len(pts_values)


def test_each_resampler_is_its_own() -> None:
    a, b = InputResampler(), InputResampler()
    a.resample(opus_like_frame(signals.tone(440, 0.02), 0))
    silent = b.resample(opus_like_frame(np.zeros(960, dtype=np.int16), 0))
    assert not np.frombuffer(silent, dtype=np.int16).any()  # nothing of a's audio leaked into b


async def test_an_empty_track_sends_silence_in_20_ms_frames_at_48_khz() -> None:
    track = PacedOutputTrack()
    frames = [await track.recv() for _ in range(3)]
    assert [f.samples for f in frames] == [960, 960, 960]
    assert [f.sample_rate for f in frames] == [48_000] * 3
    assert [f.pts for f in frames] == [0, 960, 1920]
    assert not any(f.to_ndarray().any() for f in frames)


async def test_voice_audio_comes_out_at_its_pitch() -> None:
    track = PacedOutputTrack()
    track.write(pcm24(signals.tone(500, 0.5, rate=24_000)))
    out = np.concatenate([(await track.recv()).to_ndarray().reshape(-1) for _ in range(25)])
    assert abs(signals.dominant_frequency(out) - 500) < 5
    assert signals.level_dbfs(out[4800:]) > -15


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
