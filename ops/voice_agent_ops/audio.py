"""The smoke call's audio: a short tone sent on cue, and a meter for whatever audio comes back."""

from __future__ import annotations

import asyncio
import fractions
import math

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


class ToneClip(MediaStreamTrack):
    """A microphone that is silent until ``play()``, then sends a tone for ``seconds``, then silence again.

    Frames are paced in real time (20 ms, 48 kHz mono s16), as a browser's microphone would be, and the
    track never ends, so the RTP stream stays up for the rest of the call.
    """

    kind = "audio"

    def __init__(self, *, seconds: float, frequency: float = 440.0, level_dbfs: float = -12.0) -> None:
        super().__init__()
        self.seconds = seconds
        self.frequency = frequency
        self.level_dbfs = level_dbfs
        self._tone_sent = 0
        self._playing = False
        self._amplitude = 32767 * 10 ** (level_dbfs / 20)
        self._frames_sent = 0
        self._clock_start: float | None = None
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

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._clock_start is None:
            self._clock_start = loop.time()
        else:
            due = self._clock_start + self._frames_sent * FRAME_SECONDS
            await asyncio.sleep(max(0.0, due - loop.time()))
        samples = self.next_frame(SAMPLE_RATE, loop.time())
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._frames_sent * SAMPLES_PER_FRAME
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._frames_sent += 1
        return frame

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
