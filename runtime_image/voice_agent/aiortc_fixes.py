"""Measured fixes to aiortc 1.16 / aioice 0.13, applied when the app is created.

1. **Audio level.** aiortc's RTP sender computes every outgoing audio frame's level (RFC 6465) in
   pure Python, one ``struct`` unpack per sample: 93 us per 20 ms frame at 48 kHz, 0.0046 CPU-s per
   call-second, about 8% of the agent's budget. The same arithmetic on a NumPy view of the frame
   takes about 3 us and returns the same value. aiortc looks the function up on its ``rtp`` module
   for every frame, so replacing it there is enough.
2. **Triggered checks.** RFC 8445 section 7.3.1.4: a connectivity check that arrives on a pair whose
   own check is in progress cancels that transaction and sends a new check at once. aioice leaves
   the pair to its retransmission timer (500 ms). Through TURN that timer is what every call waits
   for: the agent's first check reaches the browser's allocation before the browser, which only now
   receives the answer, has a permission for the agent, so it is dropped. The browser's own check
   proves the path is open, so the agent checks again then, once per pair.
3. **Encoder threads.** Each of aiortc's audio encoders (Opus, G.711, G.722) resamples through a
   PyAV filter graph, and FFmpeg gives every graph a pool of one thread per CPU. A graph refers to
   its filters and they to it, so the pool lives on after the call, until the garbage collector
   runs: measured, 47 to 101 threads left after 60 calls. Filtering one 20 ms frame gains nothing
   from threads, so the encoders get resamplers that run in the calling thread.

4. **TURN sends.** aioice's TURN transport sends every datagram through a new asyncio task, because
   the first send to a peer must bind a channel first. Once the channel is bound (and not due for
   refresh) that task only frames and sends: about 20 us of task creation and scheduling per packet,
   every 20 ms, on a relayed call. The agent sends those datagrams at once and leaves binding,
   refreshing and every other case to aioice's own path.
5. **Audio jitter buffer.** aiortc's audio receiver looks up ``JitterBuffer`` in its module when it is
   made; the calls' receivers get the agent's own (``voice_agent.receive``).

All are replacements of module attributes that aiortc and aioice look up at call time. ``install``
checks that what it replaces exists; if a later aiortc or aioice renames it, nothing is replaced and
the libraries' own behaviour stays (tests/agent/test_agent_aiortc_fixes.py pins them).
"""

from __future__ import annotations

import math
import struct
import time
from typing import Any

import av
import numpy as np
from aioice.ice import CandidatePair, Connection
from aioice.turn import TurnTransport
from aiortc import rtcrtpreceiver, rtp
from aiortc.codecs import g711, g722, opus

from voice_agent import receive

MAX_SAMPLE_VALUE = 32767
MIN_AUDIO_LEVEL = -127
AIORTC_COMPUTE_AUDIO_LEVEL_DBOV = rtp.compute_audio_level_dbov
"""aiortc's own version, kept so tests can compare the two."""
AIOICE_CHECK_INCOMING = Connection.check_incoming
"""aioice's own handler of incoming checks, which the triggered-check fix wraps."""
AIOICE_TURN_SENDTO = TurnTransport.sendto
"""aioice's own TURN send, used for everything but a datagram on a bound channel."""
AIORTC_JITTER_BUFFER = rtcrtpreceiver.JitterBuffer
"""aiortc's own jitter buffer class, which calls that are not the agent's keep."""
ENCODER_MODULES = (opus, g711, g722)
"""aiortc's audio encoders, each of which builds its resampler from its module's ``AudioResampler``."""


def replace_attribute(owner: Any, name: str, value: Any) -> None:
    """Every replacement goes through here: what aiortc and aioice declare as a method, a class or
    nothing at all, the agent sets at run time."""
    setattr(owner, name, value)


def compute_audio_level_dbov(frame: av.AudioFrame) -> int:
    """The frame's level in -dBov, exactly as aiortc computes it (sum of squares over the plane's
    16-bit samples, divided by ``frame.samples``), without a Python loop per sample."""
    samples = np.frombuffer(frame.planes[0], dtype=np.int16).astype(np.float64)
    rms = math.sqrt(float(np.dot(samples, samples)) / (frame.samples * MAX_SAMPLE_VALUE * MAX_SAMPLE_VALUE))
    if rms <= 0:
        return MIN_AUDIO_LEVEL
    return round(min(max(20 * math.log10(rms), MIN_AUDIO_LEVEL), 0))


def check_incoming(self: Connection, message: Any, addr: tuple[str, int], protocol: Any) -> None:
    """aioice's handling of an incoming check, then the triggered check it leaves out."""
    AIOICE_CHECK_INCOMING(self, message, addr, protocol)
    remote = next(
        (c for c in self._remote_candidates if c._network_host == addr[0] and c.port == addr[1]), None
    )
    pair = self._find_pair(protocol, remote) if remote is not None else None
    if (
        pair is None
        or pair.state != CandidatePair.State.IN_PROGRESS
        or pair.task is None
        or getattr(pair, "retriggered", False)
    ):
        return
    replace_attribute(pair, "retriggered", True)
    # Cancelling the check's task ends its STUN transaction (and its retransmission timer).
    pair.task.cancel()
    pair.task = None
    self.check_start_task(pair)


def turn_sendto(self: TurnTransport, data: bytes, addr: tuple[str, int]) -> None:
    """aioice's TURN send, without a task when the peer's channel is bound and fresh."""
    inner: Any = getattr(self, "_TurnTransport__inner_protocol", None)
    channel = None if inner is None else inner.peer_to_channel.get(addr)
    if (
        channel is None
        or getattr(self, "_TurnTransport__close_task", None) is not None
        or addr in inner.peer_connect_waiters
        or time.time() > inner.channel_refresh_at[channel]
        or inner.transport.is_closing()
    ):
        AIOICE_TURN_SENDTO(self, data, addr)
        return
    try:
        # What aioice's send_data does on a bound channel: ChannelData header, then the datagram.
        inner._send(struct.pack("!HH", channel, len(data)) + data)
    except Exception as error:  # as aioice's own send task reports a failure
        if inner.receiver is not None:
            inner.receiver.error_received(error)


def single_threaded_resampler(*args: Any, **kwargs: Any) -> av.AudioResampler:
    """``av.AudioResampler`` whose filter graph runs in the calling thread (no thread pool)."""
    return av.AudioResampler(*args, **{**kwargs, "threads": 1})


def install() -> bool:
    """Apply every fix; True if each had something to replace. Idempotent."""
    replaced = install_jitter_buffer()
    for module in ENCODER_MODULES:
        if getattr(module, "AudioResampler", None) in (av.AudioResampler, single_threaded_resampler):
            replace_attribute(module, "AudioResampler", single_threaded_resampler)
        else:
            replaced = False
    if callable(getattr(rtp, "compute_audio_level_dbov", None)):
        replace_attribute(rtp, "compute_audio_level_dbov", compute_audio_level_dbov)
    else:
        replaced = False
    if TurnTransport.sendto in (AIOICE_TURN_SENDTO, turn_sendto):
        replace_attribute(TurnTransport, "sendto", turn_sendto)
    else:
        replaced = False
    used = ("check_incoming", "check_start_task", "_find_pair")
    if all(callable(getattr(Connection, name, None)) for name in used):
        replace_attribute(Connection, "check_incoming", check_incoming)
    else:
        replaced = False
    return replaced


def install_jitter_buffer() -> bool:
    """Only the audio jitter-buffer seam (the benchmark's caller receives like a browser with it)."""
    if getattr(rtcrtpreceiver, "JitterBuffer", None) in (AIORTC_JITTER_BUFFER, receive.jitter_buffer):
        replace_attribute(rtcrtpreceiver, "JitterBuffer", receive.jitter_buffer)
        return True
    return False
