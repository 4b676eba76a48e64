"""Three measured fixes to aiortc 1.16 / aioice 0.13, applied when the app is created.

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

All are replacements of module attributes that aiortc and aioice look up at call time. ``install``
checks that what it replaces exists; if a later aiortc or aioice renames it, nothing is replaced and
the libraries' own behaviour stays (tests/agent/test_agent_aiortc_fixes.py pins all three).
"""

from __future__ import annotations

import math
from typing import Any

import av
import numpy as np
from aioice.ice import CandidatePair, Connection
from aiortc import rtcrtpreceiver, rtp
from aiortc.codecs import g711, g722, opus

from voice_agent import receive

MAX_SAMPLE_VALUE = 32767
MIN_AUDIO_LEVEL = -127
AIORTC_COMPUTE_AUDIO_LEVEL_DBOV = rtp.compute_audio_level_dbov
"""aiortc's own version, kept so tests can compare the two."""
AIOICE_CHECK_INCOMING = Connection.check_incoming
"""aioice's own handler of incoming checks, which the triggered-check fix wraps."""
AIORTC_JITTER_BUFFER = rtcrtpreceiver.JitterBuffer
"""aiortc's own jitter buffer class, which calls that are not the agent's keep."""
ENCODER_MODULES = (opus, g711, g722)
"""aiortc's audio encoders, each of which builds its resampler from its module's ``AudioResampler``."""


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
    pair.retriggered = True
    # Cancelling the check's task ends its STUN transaction (and its retransmission timer).
    pair.task.cancel()
    pair.task = None
    self.check_start_task(pair)


def single_threaded_resampler(*args: Any, **kwargs: Any) -> av.AudioResampler:
    """``av.AudioResampler`` whose filter graph runs in the calling thread (no thread pool)."""
    return av.AudioResampler(*args, **{**kwargs, "threads": 1})


def install() -> bool:
    """Apply every fix; True if each had something to replace. Idempotent."""
    replaced = install_jitter_buffer()
    for module in ENCODER_MODULES:
        if getattr(module, "AudioResampler", None) in (av.AudioResampler, single_threaded_resampler):
            module.AudioResampler = single_threaded_resampler
        else:
            replaced = False
    if callable(getattr(rtp, "compute_audio_level_dbov", None)):
        rtp.compute_audio_level_dbov = compute_audio_level_dbov
    else:
        replaced = False
    used = ("check_incoming", "check_start_task", "_find_pair")
    if all(callable(getattr(Connection, name, None)) for name in used):
        Connection.check_incoming = check_incoming
    else:
        replaced = False
    return replaced


def install_jitter_buffer() -> bool:
    """Only the audio jitter-buffer seam (the benchmark's caller receives like a browser with it)."""
    if getattr(rtcrtpreceiver, "JitterBuffer", None) in (AIORTC_JITTER_BUFFER, receive.jitter_buffer):
        rtcrtpreceiver.JitterBuffer = receive.jitter_buffer
        return True
    return False
