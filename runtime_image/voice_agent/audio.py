"""Audio plumbing for one call: the paced output track that encodes the voice for the caller.

The caller's audio comes in through ``receive`` (decoded straight to 16 kHz by libopus). Every call
owns its resamplers (a shared one mixes callers' audio). Bytes are taken from frames by sample
count, never whole planes: PyAV pads planes, and joining them stretches the stream.
Resampler graphs run in the calling thread: FFmpeg's default gives every graph a pool of one thread
per CPU, which a 20 ms frame never needs and which lives until the garbage collector frees the graph.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Callable

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from voice_agent.opus import OpusEncoder
from voice_agent.voices.base import OUTPUT_SAMPLE_RATE

BYTES_PER_SAMPLE = 2  # s16 mono
FRAME_SECONDS = 0.020


class AlignedResampler:
    """Resamples to s16 mono at ``rate`` and returns exactly the samples produced, as bytes.

    The resampler's filter delay makes its first output a few samples short (304 of 320 at 16 kHz).
    Left-padding that first output with zeros keeps every later output a whole 20 ms chunk, so
    consumers never wait a frame for the missing samples.
    """

    def __init__(self, rate: int) -> None:
        self._rate = rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=rate, threads=1)
        self._primed = False

    def resample(self, frame: av.AudioFrame) -> bytes:
        # pts gaps (packet loss) must not reach the filter graph: let it count samples itself.
        frame.pts = None
        produced = self._resampler.resample(frame)
        if not produced:
            return b""
        if len(produced) == 1:
            out = produced[0]
            pcm = bytes(memoryview(out.planes[0])[: out.samples * BYTES_PER_SAMPLE])
        else:
            pcm = b"".join(bytes(memoryview(o.planes[0])[: o.samples * BYTES_PER_SAMPLE]) for o in produced)
        if not self._primed:
            self._primed = True
            expected = round(frame.samples * self._rate / frame.sample_rate) * BYTES_PER_SAMPLE
            if len(pcm) < expected:
                pcm = bytes(expected - len(pcm)) + pcm
        return pcm


def pcm_frame(pcm: bytes, sample_rate: int) -> av.AudioFrame:
    """Wrap s16 mono PCM in an AudioFrame (for resampling or sending)."""
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // BYTES_PER_SAMPLE)
    frame.sample_rate = sample_rate
    frame.planes[0].update(pcm)
    return frame


RTP_CLOCK = 48_000
"""Opus's RTP clock, whatever the rate of the audio inside (RFC 7587)."""
SILENT_FRAMES_BEFORE_REPEAT = 5
"""After this many silent frames have been encoded, the decoder's history is silence: later silent
frames repeat the last encoded silent packet (a whole, valid packet of silence) without running the
encoder, until audio comes back. A bare TOC byte (the DTX form) is not used: after it, aiortc's
decoder (FFmpeg's libopus) was heard to ring at full scale on one of five concurrent benchmark calls."""
SILENCE_PEAK = 8
"""A frame whose samples all lie within +-8 (-72 dBFS) is silence: an empty buffer, or a decoded
quiet room echoed back."""


class PacedOutputTrack(MediaStreamTrack):
    """24 kHz mono s16 audio for the caller in 20 ms frames, paced by a monotonic clock.

    With an ``encoder`` the track hands aiortc Opus packets (``av.Packet``, timestamps on the 48 kHz
    RTP clock): aiortc sends pre-encoded packets as they are, on its event loop, so there is no
    resampling to 48 kHz stereo, no hand-off to an encoder thread and no per-frame audio-level pass.
    Without one it hands over ``av.AudioFrame`` s (tests; aiortc would encode them itself).

    - Silence when the buffer is empty, so the stream never stops; a long silence costs no encoding.
    - Audio may leave up to one frame before it is due, so audio written into an empty buffer goes
      out at once instead of waiting up to 20 ms for the next tick; the clock itself never moves
      (except after a stall), so the stream never runs faster than real time.
    - ``live`` sources (echo) produce audio at the caller's pace: the queue is kept under
      ``LIVE_MAX_BACKLOG_FRAMES`` (silence dropped first), and a backlog that stands for a whole
      second is trimmed, because a buffer paced at exactly real time otherwise keeps it forever.
      Bursty sources (a model sending seconds of speech at once) keep their backlog.
    - The buffer is bounded (oldest audio dropped); ``clear()`` takes effect on the next frame.
    """

    kind = "audio"

    #: Audio may leave this long before its frame is due.
    EARLY = FRAME_SECONDS
    #: When a frame is due but the buffer is short while audio is flowing, wait this long for more.
    UNDERRUN_GRACE = 0.015
    #: For a live source, silence fills in only after audio is this late (60 ms without any).
    LIVE_UNDERRUN_GRACE = 0.040
    #: Further behind schedule than this (a stalled loop): re-anchor instead of sending a burst.
    MAX_LATENESS = 0.100
    #: Further behind than this, even queued audio restarts the clock instead of catching up.
    MAX_CATCH_UP = 1.0
    #: A backlog that never drained for this many frames is trimmed (live sources only).
    STANDING_BACKLOG_FRAMES = 50
    #: A live source's queue never holds more than this (a burst after an input stall).
    LIVE_MAX_BACKLOG_FRAMES = 4
    #: Frames quieter than this (dBFS) go first when a live queue is over its bound.
    QUIET_DBFS = -50.0
    #: Audio that resumes after at most this many short or silent frames was an underrun (a gap the
    #: caller hears), not the end of an utterance.
    UNDERRUN_MAX_GAP_FRAMES = 10

    def __init__(
        self,
        *,
        input_rate: int = OUTPUT_SAMPLE_RATE,
        sample_rate: int = OUTPUT_SAMPLE_RATE,
        max_buffer_seconds: float = 120.0,
        live: bool = False,
        on_speaking: Callable[[bool], None] | None = None,
        encoder: OpusEncoder | None = None,
    ) -> None:
        super().__init__()
        if encoder is not None and encoder.sample_rate != sample_rate:
            raise ValueError(f"the encoder runs at {encoder.sample_rate} Hz, the track at {sample_rate} Hz")
        self._encoder = encoder
        self._silent_frames = 0
        self._silence_packet: bytes | None = None
        self._rtp_ticks = RTP_CLOCK // 50
        self._rtp_time_base = fractions.Fraction(1, RTP_CLOCK)
        self.silence_repeats = 0
        self._sample_rate = sample_rate
        self._input_rate = input_rate
        self._upsampler = AlignedResampler(sample_rate) if input_rate != sample_rate else None
        self._frame_samples = int(sample_rate * FRAME_SECONDS)
        self._frame_bytes = self._frame_samples * BYTES_PER_SAMPLE
        self._zeros = bytes(self._frame_bytes)
        self._max_buffer_bytes = int(max_buffer_seconds * sample_rate) * BYTES_PER_SAMPLE
        self._time_base = fractions.Fraction(1, sample_rate)
        self._live = live
        self._on_speaking = on_speaking
        self._buffer = bytearray()
        self._data_arrived = asyncio.Event()
        self._deadline: float | None = None
        self._pts = 0
        self._speaking = False
        self._backlog_frames = 0
        self._min_backlog = 0
        self.frames_sent = 0
        self.audio_frames_sent = 0
        self.trimmed_bytes = 0
        self.reanchors = 0
        self.underruns = 0
        self._gap_frames = 0
        self._had_audio = False

    @property
    def speaking(self) -> bool:
        """Whether the last frame sent carried audio."""
        return self._speaking

    @property
    def buffered_seconds(self) -> float:
        return len(self._buffer) / BYTES_PER_SAMPLE / self._sample_rate

    def write(self, pcm: bytes) -> None:
        """Queue audio (any length, at ``input_rate``). Over the bound, the oldest audio is dropped."""
        if not pcm or self.readyState != "live":
            return
        if self._upsampler is not None:
            pcm = self._upsampler.resample(pcm_frame(pcm, self._input_rate))
        self._buffer += pcm
        overflow = len(self._buffer) - self._max_buffer_bytes
        if overflow > 0:
            overflow += overflow % BYTES_PER_SAMPLE
            del self._buffer[:overflow]
            self.trimmed_bytes += overflow
        if self._live and len(self._buffer) > self.LIVE_MAX_BACKLOG_FRAMES * self._frame_bytes:
            self._shed_live_backlog()
        self._data_arrived.set()

    def _shed_live_backlog(self) -> None:
        """Bring a live queue back to its bound: quiet frames go first, then the oldest audio."""
        frame = self._frame_bytes
        whole = len(self._buffer) // frame
        excess = whole - self.LIVE_MAX_BACKLOG_FRAMES
        if excess <= 0:
            return
        frames = np.frombuffer(memoryview(self._buffer)[: whole * frame], dtype=np.int16).reshape(whole, -1)
        power = np.einsum("ij,ij->i", frames.astype(np.float32), frames.astype(np.float32)) / frames.shape[1]
        quiet = np.flatnonzero(power <= (32768.0 * 10 ** (self.QUIET_DBFS / 20)) ** 2)
        drop = set(quiet[:excess].tolist())
        drop.update(i for i in range(whole) if len(drop) < excess and i not in drop)
        kept = bytearray()
        for i in range(whole):
            if i not in drop:
                kept += self._buffer[i * frame : (i + 1) * frame]
        kept += self._buffer[whole * frame :]
        self.trimmed_bytes += len(self._buffer) - len(kept)
        self._buffer = kept

    def clear(self) -> None:
        """Drop everything queued (barge-in); the next frame is silence."""
        self._buffer.clear()
        self._backlog_frames = 0
        self._had_audio = False  # the gap a barge-in makes is not an underrun
        self._gap_frames = 0

    def stop(self) -> None:
        super().stop()
        self._buffer.clear()
        self._data_arrived.set()  # wake a waiting recv() so it ends
        # Stopped for good: no more callbacks (the call's handler refers back to the call) and no
        # resampler kept for audio that write() now refuses.
        self._on_speaking = None
        self._upsampler = None

    def close_encoder(self) -> None:
        """Free the encoder's libopus state (after the sender has stopped asking for frames)."""
        if self._encoder is not None:
            self._encoder.close()
            self._encoder = None

    async def recv(self) -> av.AudioFrame | av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now
        elif now - self._deadline > self.MAX_LATENESS:
            # Stalled (a busy loop, a slow encoder). Queued audio catches up at once, as the input
            # did, rather than keep the stall as standing delay; idle, the clock just restarts.
            if len(self._buffer) < self._frame_bytes or now - self._deadline > self.MAX_CATCH_UP:
                self._deadline = now
                self.reanchors += 1
        if self._live:
            # A live source (echo) is paced by its input, which is real time already: audio leaves
            # the moment a frame is complete, and the clock only fills gaps with silence once audio
            # has been missing for a while. Holding audio back to a clock of our own would turn
            # every input hiccup into standing delay.
            latest = self._deadline + (self.LIVE_UNDERRUN_GRACE if self._speaking else 0.0)
            if await self._wait_for_frame(latest):
                self._deadline = time.monotonic()
        else:
            # Frame k is due at deadline k. Audio may leave up to one frame early (so audio arriving
            # between ticks does not wait for the next one), and silence only leaves once audio is
            # late by the grace period while audio is flowing. The clock itself never moves, so late
            # audio neither drifts the stream nor makes it run faster than real time.
            latest = self._deadline + (self.UNDERRUN_GRACE if self._speaking else 0.0)
            if await self._wait_for_frame(latest):
                wait = self._deadline - self.EARLY - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                    if self.readyState != "live":
                        raise MediaStreamError
        self._deadline += FRAME_SECONDS
        return self._next_frame()

    async def _wait_for_frame(self, latest: float) -> bool:
        """Wait until a whole frame is queued (True) or ``latest`` passes (False)."""
        while len(self._buffer) < self._frame_bytes:
            remaining = latest - time.monotonic()
            if remaining <= 0:
                return False
            self._data_arrived.clear()
            try:
                await asyncio.wait_for(self._data_arrived.wait(), remaining)
            except TimeoutError:
                pass
            if self.readyState != "live":
                raise MediaStreamError
        return True

    def _next_frame(self) -> av.AudioFrame | av.Packet:
        taken = min(len(self._buffer), self._frame_bytes)
        if taken == self._frame_bytes:
            pcm = bytes(memoryview(self._buffer)[:taken])
        else:
            # Short (end of speech) or empty: pad with silence.
            pcm = bytes(self._buffer[:taken]) + bytes(self._frame_bytes - taken)
        del self._buffer[:taken]
        out = self._encode(pcm) if self._encoder is not None else self._frame(pcm)
        self._pts += self._frame_samples
        self.frames_sent += 1
        if taken:
            self.audio_frames_sent += 1
        if taken == self._frame_bytes:
            if 0 < self._gap_frames <= self.UNDERRUN_MAX_GAP_FRAMES:
                self.underruns += 1
            self._gap_frames = 0
            self._had_audio = True
        elif self._had_audio:
            self._gap_frames += 1
        if self._live:
            self._trim_standing_backlog()
        speaking = taken > 0
        if speaking != self._speaking:
            self._speaking = speaking
            if self._on_speaking is not None:
                self._on_speaking(speaking)
        return out

    def _frame(self, pcm: bytes) -> av.AudioFrame:
        frame = av.AudioFrame(format="s16", layout="mono", samples=self._frame_samples)
        frame.planes[0].update(pcm)
        frame.sample_rate = self._sample_rate
        frame.time_base = self._time_base
        frame.pts = self._pts
        return frame

    def _encode(self, pcm: bytes) -> av.Packet:
        """One Opus packet. Silence skips the encoder once the decoder has heard enough of it to
        conceal more silence, and silence is most of a voice agent's output."""
        assert self._encoder is not None
        silent = pcm == self._zeros or int(np.abs(np.frombuffer(pcm, dtype=np.int16)).max()) <= SILENCE_PEAK
        if silent and self._silent_frames >= SILENT_FRAMES_BEFORE_REPEAT and self._silence_packet is not None:
            payload = self._silence_packet
            self.silence_repeats += 1
        else:
            payload = self._encoder.encode(pcm)
            self._silence_packet = payload if silent else None
        self._silent_frames = self._silent_frames + 1 if silent else 0
        packet = av.Packet(payload)
        packet.pts = self._pts * self._rtp_ticks // self._frame_samples
        packet.time_base = self._rtp_time_base
        return packet

    def _trim_standing_backlog(self) -> None:
        level = len(self._buffer)
        if level < self._frame_bytes:
            self._backlog_frames = 0
            return
        self._min_backlog = level if self._backlog_frames == 0 else min(self._min_backlog, level)
        self._backlog_frames += 1
        if self._backlog_frames >= self.STANDING_BACKLOG_FRAMES:
            excess = (self._min_backlog // self._frame_bytes) * self._frame_bytes
            del self._buffer[:excess]
            self.trimmed_bytes += excess
            self._backlog_frames = 0
