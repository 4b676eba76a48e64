"""A caller's audio: a signal sent on a microphone-paced track, and a recorder of what comes back.

Both run on the monotonic clock, so a sample's departure (``SignalSource.sample_sent_at``) and an echo's
arrival (``Recorder.sample_arrived_at``) subtract to a latency.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame
from voice_agent_ops.audio import SAMPLE_RATE, SAMPLES_PER_FRAME, PacedAudioTrack


class SignalSource(PacedAudioTrack):
    """Plays int16 mono 48 kHz samples as 20 ms frames in real time, then silence (or again: ``loop``)."""

    def __init__(self, samples: np.ndarray | None = None, *, loop: bool = False) -> None:
        super().__init__()
        samples = np.zeros(0, dtype=np.int16) if samples is None else samples.astype(np.int16)
        padded = int(np.ceil(len(samples) / SAMPLES_PER_FRAME)) * SAMPLES_PER_FRAME
        self._samples = np.concatenate([samples, np.zeros(padded - len(samples), dtype=np.int16)])
        self._frames = len(self._samples) // SAMPLES_PER_FRAME
        self._repeat = loop
        self._silence = np.zeros(SAMPLES_PER_FRAME, dtype=np.int16)
        self.finished = asyncio.Event()
        """Set when the first frame after the signal goes (never, with ``loop``)."""

    def frame_samples(self, index: int) -> np.ndarray:
        position = index % self._frames if (self._repeat and self._frames) else index
        if position < self._frames:
            return self._samples[position * SAMPLES_PER_FRAME : (position + 1) * SAMPLES_PER_FRAME]
        self.finished.set()
        return self._silence

    def sample_sent_at(self, sample: int) -> float:
        """When a given sample of the signal left (interpolated within its frame)."""
        frame, offset = divmod(sample, SAMPLES_PER_FRAME)
        return self.sent_at[frame] + offset / SAMPLE_RATE


class Recorder:
    """Keeps what the agent sends as mono 48 kHz samples (channel 0) and the time each frame arrived:
    from aiortc's track (``start``), or from a receive path of the caller's own (``add``)."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self.arrived_at: list[float] = []
        self.frame_lengths: list[int] = []
        self._task: asyncio.Task[None] | None = None
        self.ended = asyncio.Event()

    def start(self, track: MediaStreamTrack) -> None:
        self._task = asyncio.ensure_future(self._drain(track))

    def add(self, pcm: bytes, real: bool) -> None:
        """A frame of 48 kHz mono s16 as it leaves the receive path's playout clock."""
        self._keep(np.frombuffer(pcm, dtype=np.int16).copy(), time.monotonic())

    def _keep(self, mono: np.ndarray, arrived: float) -> None:
        self.arrived_at.append(arrived)
        self.frame_lengths.append(len(mono))
        self._chunks.append(mono)

    async def _drain(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                arrived = time.monotonic()  # before the conversion: when the frame left the decoder
                assert isinstance(frame, AudioFrame)
                data = frame.to_ndarray()
                channels = len(frame.layout.channels)
                # Packed s16 arrives as one interleaved row; planar as one row per channel.
                mono = data.reshape(-1, channels)[:, 0] if data.shape[0] == 1 else data[0]
                self._keep(mono.astype(np.int16, copy=True), arrived)
        except MediaStreamError:
            pass
        finally:
            self.ended.set()

    def samples(self) -> np.ndarray:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)

    def frame_starts(self) -> np.ndarray:
        """The index in ``samples()`` of each frame's first sample."""
        lengths = np.array(self.frame_lengths, dtype=np.int64)
        return np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(lengths) else np.zeros(0, np.int64)

    def sample_arrived_at(self, sample: int) -> float:
        """When a given received sample arrived (its frame's arrival, plus its offset in the frame)."""
        position = 0
        for length, arrived in zip(self.frame_lengths, self.arrived_at, strict=True):
            if sample < position + length:
                return arrived + (sample - position) / SAMPLE_RATE
            position += length
        raise IndexError(sample)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
