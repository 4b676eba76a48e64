"""The test signal and its detection: a 100 ms chirp, found again in the echo by a matched filter.

Everything here is pure numpy on 48 kHz mono int16, so the analysis can be checked offline against
synthetic echoes before it is trusted on a real call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960
"""20 ms at 48 kHz: what the paced client track hands aiortc's Opus encoder."""
CHIRP_SECONDS = 0.1
CHIRP_FRAMES = round(CHIRP_SECONDS * SAMPLE_RATE) // FRAME_SAMPLES
# The agent hears 16 kHz audio, so everything above 8 kHz is lost; stay well inside telephone band.
CHIRP_LOW_HZ = 400.0
CHIRP_HIGH_HZ = 3_400.0
CHIRP_AMPLITUDE = 0.5  # -6 dBFS: loud and clear, far from clipping after resampling
SEGMENT_SAMPLES = 480
"""10 ms: an echo is judged intact piece by piece, so one lost 20 ms frame shows wherever it falls."""
SEGMENT_INTACT = 0.8
"""An echo is intact when every 10 ms of it has the chirp's spectrum there (magnitude spectra
correlate at 0.8 or more). A voice codec at 32 kbit/s changes the waveform (overall correlation
about 0.93) but not where the sweep is; a lost frame, concealed or silent, is elsewhere or nowhere."""
DETECTION_THRESHOLD = 0.5
"""Minimum normalised correlation for an echo to count as the chirp (noise scores far below 0.1)."""


def chirp(low_hz: float = CHIRP_LOW_HZ, high_hz: float = CHIRP_HIGH_HZ) -> np.ndarray:
    """A linear sweep of 100 ms (400-3400 Hz by default), int16, with 2 ms raised-cosine edges."""
    n = round(CHIRP_SECONDS * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    rate = (high_hz - low_hz) / CHIRP_SECONDS
    wave = np.sin(2 * np.pi * (low_hz * t + 0.5 * rate * t * t))
    edge = round(0.002 * SAMPLE_RATE)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(edge) / edge)
    wave[:edge] *= ramp
    wave[-edge:] *= ramp[::-1]
    return np.round(wave * CHIRP_AMPLITUDE * 32767).astype(np.int16)


def caller_chirps(count: int) -> list[np.ndarray]:
    """One chirp per concurrent caller, each in its own slice of the band, so a caller's signal is
    recognisable wherever it turns up (a torn own echo cannot pass for another caller)."""
    if count == 1:
        return [chirp()]
    width = (CHIRP_HIGH_HZ - CHIRP_LOW_HZ) / count
    guard = width * 0.1
    # Neighbours in time get bands apart from each other (0, 2, 4, 1, 3 for five callers).
    order = [*range(0, count, 2), *range(1, count, 2)]
    return [chirp(CHIRP_LOW_HZ + b * width + guard, CHIRP_LOW_HZ + (b + 1) * width - guard) for b in order]


@dataclass(frozen=True)
class Onset:
    sample: int
    """Index in the received stream where the chirp's first sample lies."""
    score: float
    """Normalised correlation with the chirp, 0..1."""


def find_chirp(stream: np.ndarray, start: int, stop: int, template: np.ndarray) -> Onset | None:
    """The best match of ``template`` starting within ``stream[start:stop]``, or None if too weak."""
    start = max(start, 0)
    segment = stream[start : min(stop + len(template), len(stream))].astype(np.float64)
    if len(segment) < len(template):
        return None
    tmpl = template.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(segment) + len(tmpl))))
    # Cross-correlation by FFT: the direct sum is too slow for a second of 48 kHz audio per chirp.
    corr = np.fft.irfft(np.fft.rfft(segment, size) * np.conj(np.fft.rfft(tmpl, size)), size)
    valid = corr[: len(segment) - len(tmpl) + 1]
    energy = np.concatenate(([0.0], np.cumsum(segment * segment)))
    window_energy = energy[len(tmpl) :] - energy[: len(segment) - len(tmpl) + 1]
    norm = np.sqrt(np.maximum(window_energy, 1e-9)) * np.linalg.norm(tmpl)
    # The strongest match wins (raw correlation grows with level): a faint copy of the chirp, such as
    # another caller leaking in, has the same normalised score as the real echo and must not win.
    best = int(np.argmax(valid))
    score = float(valid[best] / norm[best])
    if score < DETECTION_THRESHOLD:
        return None
    return Onset(sample=start + best, score=score)


@dataclass
class ReceivedAudio:
    """What came out of the client's decoder: mono samples, and when each 20 ms frame left recv()."""

    samples: np.ndarray
    frame_starts: np.ndarray
    """Index in ``samples`` of each frame's first sample."""
    frame_times: np.ndarray
    """time.monotonic() at which each frame came out of the remote track's recv()."""

    def time_of(self, sample: int) -> float:
        """When ``sample`` left the decoder: its frame's time plus its offset within that frame."""
        frame = int(np.searchsorted(self.frame_starts, sample, side="right")) - 1
        return float(self.frame_times[frame] + (sample - self.frame_starts[frame]) / SAMPLE_RATE)

    def first_sample_after(self, moment: float) -> int:
        frame = int(np.searchsorted(self.frame_times, moment, side="left"))
        return int(self.frame_starts[frame]) if frame < len(self.frame_starts) else len(self.samples)


@dataclass(frozen=True)
class Echo:
    sent_at: float
    latency_ms: float | None
    """None when the chirp did not come back (a miss)."""
    onset_sample: int | None
    score: float
    intact: bool = False
    """Every 10 ms of the echo has the chirp's spectrum (see ``segment_similarity``)."""


def segment_similarity(stream: np.ndarray, onset: int, template: np.ndarray) -> list[float]:
    """For each 10 ms of the chirp, how alike the echo's magnitude spectrum there is (0..1)."""
    window = np.hanning(SEGMENT_SAMPLES)
    scores = []
    for start in range(0, len(template) - SEGMENT_SAMPLES + 1, SEGMENT_SAMPLES):
        piece = stream[onset + start : onset + start + SEGMENT_SAMPLES].astype(np.float64)
        if len(piece) < SEGMENT_SAMPLES:
            scores.append(0.0)
            continue
        heard = np.abs(np.fft.rfft(piece * window))
        sent = np.abs(np.fft.rfft(template[start : start + SEGMENT_SAMPLES].astype(np.float64) * window))
        norm = float(np.linalg.norm(heard) * np.linalg.norm(sent))
        scores.append(float(heard @ sent) / norm if norm > 0 else 0.0)
    return scores


def measure_echoes(
    received: ReceivedAudio, sent_times: list[float], template: np.ndarray, search_seconds: float
) -> list[Echo]:
    """For every chirp sent at ``sent_times`` (when its first frame entered the encoder), the delay
    until its echo's onset left the decoder, searching ``search_seconds`` after the send."""
    echoes = []
    for sent in sent_times:
        start = received.first_sample_after(sent)
        stop = received.first_sample_after(sent + search_seconds)
        onset = find_chirp(received.samples, start, stop, template) if stop > start else None
        if onset is None:
            echoes.append(Echo(sent_at=sent, latency_ms=None, onset_sample=None, score=0.0))
            continue
        latency = (received.time_of(onset.sample) - sent) * 1000
        intact = min(segment_similarity(received.samples, onset.sample, template)) >= SEGMENT_INTACT
        echoes.append(Echo(sent, latency, onset.sample, onset.score, intact=intact))
    return echoes


@dataclass(frozen=True)
class Leakage:
    max_abs: int
    """Largest |sample| outside the caller's own echo windows (0 is digital silence)."""
    rms_dbfs: float
    samples_checked: int


def outside_own_echoes(
    received: ReceivedAudio, echoes: list[Echo], template_len: int, *, start_sample: int, stop_sample: int
) -> np.ndarray:
    """A mask of the samples between ``start_sample`` and ``stop_sample`` (after those, chirps still
    in flight were not searched for) that lie outside the caller's own echoes."""
    mask = np.zeros(len(received.samples), dtype=bool)
    mask[max(start_sample, 0) : max(stop_sample, 0)] = True
    for echo in echoes:
        if echo.onset_sample is None:
            continue
        # A little before (codec pre-echo) and a longer tail (codec and resampler ringing); a torn echo
        # (a gap or a dropped frame inside it) has its pieces up to a few frames either side.
        before, after = (0.01, 0.06) if echo.intact else (0.1, 0.12)
        first = max(echo.onset_sample - round(before * SAMPLE_RATE), 0)
        mask[first : echo.onset_sample + template_len + round(after * SAMPLE_RATE)] = False
    return mask


def level(samples: np.ndarray) -> Leakage:
    """Peak and RMS of what a mask selected."""
    if len(samples) == 0:
        return Leakage(max_abs=0, rms_dbfs=float("-inf"), samples_checked=0)
    values = samples.astype(np.float64)
    rms = float(np.sqrt(np.mean(values * values)))
    dbfs = 20 * np.log10(rms / 32768) if rms > 0 else float("-inf")
    return Leakage(max_abs=int(np.max(np.abs(values))), rms_dbfs=float(dbfs), samples_checked=len(values))


def leakage_outside(
    received: ReceivedAudio, echoes: list[Echo], template_len: int, *, start_sample: int, stop_sample: int
) -> Leakage:
    """What came back outside the caller's own echoes: silence, unless another caller leaks in or
    the caller's own echo came back torn (a gap inside the chirp pushes part of it out)."""
    mask = outside_own_echoes(
        received, echoes, template_len, start_sample=start_sample, stop_sample=stop_sample
    )
    return level(received.samples[mask])


def crosstalk_gain(received: ReceivedAudio, other_chirp: np.ndarray, other_echo_times: list[float]) -> float:
    """How loud another caller's chirp is in this caller's audio, relative to that caller's own echo
    level (1.0 = as loud as sent), around the moments its echoes left the other caller's decoder.

    The matched filter's peak divided by the chirp's energy estimates the gain of any copy of it;
    this caller's own chirp lies in another band and scores next to nothing."""
    tmpl = other_chirp.astype(np.float64)
    energy = float(np.dot(tmpl, tmpl))
    worst = 0.0
    for moment in other_echo_times:
        first = received.first_sample_after(moment - 0.06)
        last = min(received.first_sample_after(moment + 0.06) + len(tmpl), len(received.samples))
        segment = received.samples[first:last].astype(np.float64)
        if len(segment) < len(tmpl):
            continue
        size = 1 << int(np.ceil(np.log2(len(segment) + len(tmpl))))
        corr = np.fft.irfft(np.fft.rfft(segment, size) * np.conj(np.fft.rfft(tmpl, size)), size)
        worst = max(worst, float(np.max(np.abs(corr[: len(segment) - len(tmpl) + 1]))) / energy)
    return worst


def gain_db(gain: float) -> float:
    return 20 * float(np.log10(gain)) if gain > 0 else float("-inf")
