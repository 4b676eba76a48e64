"""The caller's audio on its way in: aiortc's jitter-buffer seam, playout, libopus decoding.

aiortc's RTCRtpReceiver makes its audio jitter buffer with the name ``JitterBuffer`` from its own
module, and that buffer waits on a missing packet and keeps the delay it builds (four packets of
prefetch, more after any loss). ``aiortc_fixes`` puts ``jitter_buffer`` under that name: while a
call negotiates inside ``ReceivePath.installed()``, the receiver aiortc creates gets an
``AdaptiveJitterBuffer`` bound to that call; every other receiver (video, or a peer that is not a
call, such as a test's client) gets aiortc's own.

The adaptive buffer keeps the packets, plays them out on its own clock (``jitter.PlayoutBuffer``),
decodes them with libopus straight to the voice's 16 kHz mono, recovering lost packets from the
browser's in-band FEC or concealing them, and hands the PCM to the call. Packets a gap shows to be
missing are asked for again through the receiver's own RTCP NACK sender (``_send_rtcp_nack``, which
aiortc uses for video; the call hands it over): aiortc-based senders keep a history and answer.
It never returns a frame to aiortc, so aiortc's decoder thread and its stereo 48 kHz decode stay idle.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict
from typing import Any

import numpy as np

from voice_agent.jitter import RTP_CLOCK, Kind, Playout, PlayoutBuffer, PlayoutSettings
from voice_agent.opus import OpusDecoder, OpusError, has_fec

INPUT_RATE = 16_000
"""What the voice receives (voices.base.INPUT_SAMPLE_RATE), unless a path asks for another rate."""
QUIET_DBFS = -45.0
"""A frame this quiet may be left out when the delay is above its target."""

_ACTIVE: ContextVar[ReceivePath | None] = ContextVar("voice_agent_receive_path", default=None)
"""The call whose peer connection is being negotiated in this task (contextvars are per task)."""

NackSender = Callable[[int, list[int]], Awaitable[None]]
"""``(media_ssrc, sequence_numbers)``: asks the sender for these packets again (RTCP NACK)."""

AudioSink = Callable[[bytes, bool], None]
"""``(pcm, real)``: mono s16 PCM at the path's rate; ``real`` is False for concealment (no packet came)."""


class ReceivePath:
    """One call's incoming audio. ``on_audio`` gets every frame, in order, on the event loop."""

    def __init__(
        self, on_audio: AudioSink, *, sample_rate: int = INPUT_RATE, settings: PlayoutSettings | None = None
    ) -> None:
        self._on_audio = on_audio
        self.sample_rate = sample_rate
        self._settings = settings
        self._buffer: AdaptiveJitterBuffer | None = None
        #: The Opus payload type of the negotiated answer; other payload types are ignored.
        self.payload_type: int | None = None
        #: How to ask for lost packets again: aiortc's receiver's own NACK sender, once it exists.
        self.send_nack: NackSender | None = None

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Receivers aiortc creates inside this block feed this call."""
        token = _ACTIVE.set(self)
        try:
            yield
        finally:
            _ACTIVE.reset(token)

    def _claim(self) -> AdaptiveJitterBuffer | None:
        """The call's one audio jitter buffer: the first audio receiver gets it, later ones do not."""
        if self._buffer is not None:
            return None
        self._buffer = AdaptiveJitterBuffer(self, PlayoutBuffer(self._settings))
        return self._buffer

    @property
    def stats(self) -> dict[str, Any]:
        """Counts for the call's end-of-call log line."""
        if self._buffer is None:
            return {}
        return self._buffer.report()

    def close(self) -> None:
        """Stop playout and free the decoder; the call's handler is let go (aiortc's receiver may
        outlive the call a little, and it holds the buffer)."""
        if self._buffer is not None:
            self._buffer.close()
        self._on_audio = _discard


def _discard(pcm: bytes, real: bool) -> None:
    """Where audio goes once the call has closed."""


def jitter_buffer(capacity: int, prefetch: int = 0, is_video: bool = False) -> Any:
    """Stands in for aiortc's ``JitterBuffer`` class in ``aiortc.rtcrtpreceiver`` (see the module)."""
    path = None if is_video else _ACTIVE.get()
    buffer = path._claim() if path is not None else None
    if buffer is not None:
        return buffer
    from aiortc.jitterbuffer import JitterBuffer

    return JitterBuffer(capacity=capacity, prefetch=prefetch, is_video=is_video)


class AdaptiveJitterBuffer:
    """aiortc's jitter-buffer interface (``add`` -> ``(pli, frame)``), playing out on its own timer."""

    capacity = 16  # aiortc's own audio capacity; aiortc reads it only for logging

    def __init__(self, path: ReceivePath, playout: PlayoutBuffer) -> None:
        self._path = path
        self._playout = playout
        self._decoder: OpusDecoder | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ignored = 0
        self._corrupt = 0
        self._closed = False
        self._ticks_per_sample = RTP_CLOCK // INPUT_RATE
        self._ssrc: int | None = None
        self._fec_packets = 0
        self._nacks: set[asyncio.Future[None]] = set()
        self._nack_failures = 0

    def add(self, packet: Any) -> tuple[bool, None]:
        """One RTP packet from aiortc's receiver (on the event loop). Nothing goes back to aiortc."""
        if self._closed:
            return False, None
        wanted = self._path.payload_type
        if wanted is not None and packet.payload_type != wanted:
            self._ignored += 1
            return False, None
        payload = packet.payload
        if not payload:
            return False, None
        if self._decoder is None:
            self._decoder = OpusDecoder(sample_rate=self._path.sample_rate, channels=1)
            self._ticks_per_sample = RTP_CLOCK // self._path.sample_rate
            self._loop = asyncio.get_running_loop()
        assert self._loop is not None
        self._ssrc = packet.ssrc
        ticks = self._decoder.samples_in(payload) * self._ticks_per_sample
        if has_fec(payload):
            self._fec_packets += 1  # the caller sends in-band FEC (a browser that saw our loss reports)
        now = self._loop.time()
        self._playout.push(packet.sequence_number, packet.timestamp, payload, ticks, now)
        self._ask_again(now)
        self._schedule()
        return False, None

    def _schedule(self) -> None:
        """Wake for the next frame, or sooner when a missing packet becomes overdue."""
        due = self._playout.next_due
        asked = self._playout.next_request_due
        if asked is not None and (due is None or asked < due):
            due = asked
        if due is None or self._loop is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        if self._timer is not None:
            if self._timer.when() <= due:
                return
            self._timer.cancel()
        self._timer = self._loop.call_at(due, self._wake)

    def _wake(self) -> None:
        self._timer = None
        assert self._loop is not None and self._decoder is not None
        now = self._loop.time()
        self._ask_again(now)
        while (item := self._playout.pop(now)) is not None:
            pcm = self._decode(item)
            if item.drop:
                continue
            if item.drop_if_quiet and _quiet(pcm):
                self._playout.skip(item)
                continue
            self._path._on_audio(pcm, item.kind is not Kind.CONCEAL)
        self._schedule()

    def _ask_again(self, now: float) -> None:
        """NACK what has become overdue; aiortc senders answer, browsers ignore it for audio."""
        wanted = self._playout.take_requests(now)
        send = self._path.send_nack
        if wanted and send is not None and self._ssrc is not None:
            task = asyncio.ensure_future(send(self._ssrc, wanted))
            self._nacks.add(task)
            task.add_done_callback(self._nack_sent)

    def _nack_sent(self, task: asyncio.Future[None]) -> None:
        self._nacks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._nack_failures += 1  # a transport closing under it: nothing to do

    def _decode(self, item: Playout) -> bytes:
        decoder = self._decoder
        assert decoder is not None
        samples = item.ticks // self._ticks_per_sample
        try:
            if item.kind is Kind.PACKET:
                assert item.payload is not None
                return decoder.decode(item.payload)
            if item.kind is Kind.FEC and item.payload is not None and has_fec(item.payload):
                return decoder.recover(item.payload, samples)
        except OpusError:
            self._corrupt += 1
        if item.kind is Kind.FEC:
            # The next packet had no FEC after all (a sender without it): plain concealment.
            self._playout.stats.recovered -= 1
            self._playout.stats.concealed += 1
        return decoder.conceal(samples)

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = asdict(self._playout.stats)
        report["jitter_ms"] = round(self._playout.jitter_level * 1000, 1)
        report["target_delay_ms"] = round(self._playout.target_delay * 1000, 1)
        delay = self._playout.delay
        report["delay_ms"] = None if delay is None else round(delay * 1000, 1)
        report["ignored"] = self._ignored
        report["corrupt"] = self._corrupt
        report["nack_failures"] = self._nack_failures
        report["fec_packets"] = self._fec_packets
        return report

    def close(self) -> None:
        self._closed = True
        for task in self._nacks:
            task.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None


def _quiet(pcm: bytes) -> bool:
    """RMS below QUIET_DBFS (a cheap sum of squares; frames are 320 samples)."""
    if not pcm:
        return True
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    rms = math.sqrt(float(np.dot(samples, samples)) / len(samples)) / 32768.0
    return rms <= 10 ** (QUIET_DBFS / 20)
