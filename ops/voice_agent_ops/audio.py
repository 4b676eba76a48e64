"""The smoke call's audio: a track paced like a microphone (the testbed's callers send on it too), a short
tone sent on cue, and a meter for whatever audio comes back."""

from __future__ import annotations

import asyncio
import fractions
import math
import time

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

SAMPLE_RATE = 48_000
FRAME_SECONDS = 0.020
SAMPLES_PER_FRAME = int(SAMPLE_RATE * FRAME_SECONDS)


def dbfs(samples: np.ndarray) -> float:
    """RMS level of s16 samples in dB relative to full scale (-inf for digital silence)."""
    if samples.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64))))) / 32768.0
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


class PacedAudioTrack(MediaStreamTrack):
    """A microphone's pace: 20 ms frames of 48 kHz mono s16, frame ``i`` handed over ``i`` x 20 ms after the
    first on the monotonic clock (a late frame goes at once, and the next ones catch up to the schedule).

    ``sent_at[i]`` is when frame ``i`` left recv(): the moment aiortc's sender takes it to the Opus encoder.
    Subclasses say what each frame holds (``frame_samples``).
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._index = 0
        self._time_base = fractions.Fraction(1, SAMPLE_RATE)
        self.sent_at: list[float] = []

    def frame_samples(self, index: int) -> np.ndarray:
        """Frame ``index``: SAMPLES_PER_FRAME int16 samples."""
        raise NotImplementedError

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._index * FRAME_SECONDS
        if due > now:
            await asyncio.sleep(due - now)
        index = self._index
        self._index += 1
        samples = self.frame_samples(index)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = index * SAMPLES_PER_FRAME
        frame.time_base = self._time_base
        self.sent_at.append(time.monotonic())
        return frame


class ToneClip(PacedAudioTrack):
    """A microphone that is silent until ``play()``, then sends a tone for ``seconds``, then silence again.

    The track never ends, so the RTP stream stays up for the rest of the call.
    """

    def __init__(self, *, seconds: float, frequency: float = 440.0, level_dbfs: float = -12.0) -> None:
        super().__init__()
        self.seconds = seconds
        self.frequency = frequency
        self.level_dbfs = level_dbfs
        self._tone_sent = 0
        self._playing = False
        self._amplitude = 32767 * 10 ** (level_dbfs / 20)
        self.started_at: float | None = None
        """Event-loop time of the first tone frame."""
        self.finished = asyncio.Event()
        """Set once the whole tone has been handed to the sender."""

    def play(self) -> None:
        """Start the tone; once it has finished, another call plays it again from the start."""
        if self.finished.is_set():
            self._tone_sent = 0
            self.started_at = None
            self.finished.clear()
        self._playing = True

    def frame_samples(self, index: int) -> np.ndarray:
        return self.next_frame(SAMPLE_RATE, asyncio.get_running_loop().time())

    def next_frame(self, rate: int, now: float) -> np.ndarray:
        """The next 20 ms at ``rate`` (one rate per clip): the tone while it plays, silence otherwise.
        ``now`` (event-loop time) is noted as the tone's start when its first frame goes."""
        samples = np.zeros(int(rate * FRAME_SECONDS), dtype=np.int16)
        tone_samples = int(self.seconds * rate)
        if self._playing and self._tone_sent < tone_samples:
            if self.started_at is None:
                self.started_at = now
            count = min(len(samples), tone_samples - self._tone_sent)
            t = (np.arange(count) + self._tone_sent) / rate  # continuous phase across frames
            samples[:count] = (self._amplitude * np.sin(2 * np.pi * self.frequency * t)).astype(np.int16)
            self._tone_sent += count
            if self._tone_sent >= tone_samples:
                self.finished.set()
        return samples


class ReturnedAudioMeter:
    """Reads the agent's audio track and notes when something louder than ``threshold_dbfs`` arrives."""

    def __init__(self, *, threshold_dbfs: float = -40.0) -> None:
        self.threshold_dbfs = threshold_dbfs
        self.heard = asyncio.Event()
        self.first_heard_at: float | None = None
        self.loudest_dbfs = -math.inf
        self.frames = 0
        self._armed = False

    def arm(self) -> None:
        """Count only what arrives from now on (the tone is about to play); forgets earlier tones."""
        self._armed = True
        self.heard.clear()
        self.first_heard_at = None

    async def consume(self, track: MediaStreamTrack) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, AudioFrame)
            self.hear(frame.to_ndarray(), loop.time())

    def hear(self, samples: np.ndarray, now: float) -> None:
        """One frame of what came back, arrived at ``now`` (event-loop time)."""
        self.frames += 1
        level = dbfs(samples)
        if self._armed:
            self.loudest_dbfs = max(self.loudest_dbfs, level)
        if self._armed and level > self.threshold_dbfs and self.first_heard_at is None:
            self.first_heard_at = now
            self.heard.set()
