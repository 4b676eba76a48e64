"""The agent's Opus encoder settings measured: CPU per 20 ms frame against quality, per complexity.

    .venv/bin/python -m bench.codec

Quality is measured twice: the log-spectral distance (dB, lower is better) between a voiced test
signal and what comes out of the decoder, over 20 ms frames; and the benchmark's own chirp, whose
every 10 ms must keep its spectrum (the echo benchmark's "intact", a fast sweep that low complexities
smear). CPU is ``time.process_time`` per encoded frame (median of five passes). It marks the
cheapest complexity whose chirps stay intact and whose distance is within 0.25 dB of the best; the
agent's default is chosen among those by the end-to-end echo benchmark (see OpusSettings).
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
from voice_agent.opus import OpusDecoder, OpusSettings

from bench import signals

RATE = 24_000
FRAME = 480
SECONDS = 6.0


def voiced(seconds: float = SECONDS, rate: int = RATE) -> np.ndarray:
    """Harmonics of a gliding pitch with formant-like emphasis, in syllables, and quiet noise."""
    rng = np.random.default_rng(7)
    t = np.arange(int(rate * seconds)) / rate
    pitch = 110 + 50 * np.sin(2 * np.pi * 0.4 * t) + 20 * np.sin(2 * np.pi * 2.3 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    formants = (700, 1200, 2600)
    signal = np.zeros_like(t)
    for k in range(1, 40):
        frequency = k * pitch
        gain = sum(np.exp(-(((frequency - f) / 150) ** 2)) for f in formants) + 0.05
        signal += gain * np.sin(k * phase) / k
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 3.1 * t)
    signal = signal / np.max(np.abs(signal)) * syllables + 0.003 * rng.standard_normal(len(t))
    return (0.3 * 32767 * signal).astype(np.int16)


def log_spectral_distance(reference: np.ndarray, decoded: np.ndarray) -> float:
    window = np.hanning(FRAME)
    distances = []
    for start in range(FRAME * 10, len(reference) - FRAME, FRAME):  # after the codec has settled
        a = np.abs(np.fft.rfft(reference[start : start + FRAME] * window)) + 1e-3
        b = np.abs(np.fft.rfft(decoded[start : start + FRAME] * window)) + 1e-3
        distances.append(float(np.sqrt(np.mean((20 * np.log10(a / b)) ** 2))))
    return statistics.mean(distances)


def chirp_similarity(complexity: int) -> float:
    """The worst 10 ms of ten chirps (24 kHz, a second apart) through the encoder, 0..1."""
    chirp = signals.chirp()[::2]  # 48 kHz -> 24 kHz (the sweep stays far below 12 kHz)
    period = np.zeros(RATE, dtype=np.int16)
    period[RATE // 2 : RATE // 2 + len(chirp)] = chirp
    train = np.tile(period, 10)
    encoder = OpusSettings(complexity=complexity).encoder(RATE)
    decoder = OpusDecoder(sample_rate=RATE)
    out = np.frombuffer(
        b"".join(
            decoder.decode(encoder.encode(train[i : i + FRAME].tobytes()))
            for i in range(0, len(train) - FRAME + 1, FRAME)
        ),
        dtype=np.int16,
    )
    up = np.repeat(out, 2)  # back to the 48 kHz the analysis expects; spectra of the sweep survive
    worst = 1.0
    for n in range(1, 10):
        start = (n * RATE + RATE // 2) * 2
        onset = signals.find_chirp(up, start - 2400, start + 2400, signals.chirp())
        if onset is None:
            return 0.0
        worst = min(worst, *signals.segment_similarity(up, onset.sample, signals.chirp()))
    return worst


def measure(complexity: int, source: np.ndarray) -> tuple[float, float, float]:
    """(microseconds per frame, kbit/s, log-spectral distance in dB)"""
    frames = [source[i : i + FRAME].tobytes() for i in range(0, len(source) - FRAME + 1, FRAME)]
    settings = OpusSettings(complexity=complexity)
    timings = []
    packets: list[bytes] = []
    for _ in range(5):
        encoder = settings.encoder(RATE)
        started = time.process_time()
        packets = [encoder.encode(frame) for frame in frames]
        timings.append((time.process_time() - started) / len(frames) * 1e6)
        encoder.close()
    decoder = OpusDecoder(sample_rate=RATE)
    decoded = np.frombuffer(b"".join(decoder.decode(p) for p in packets), dtype=np.int16)
    decoder.close()
    # The decoder's output lags the input by the codec's look-ahead: align before comparing.
    lag = (
        int(np.argmax(np.correlate(decoded[:4800].astype(float), source[:4800].astype(float), "full"))) - 4799
    )
    aligned = decoded[lag:] if lag > 0 else decoded
    size = min(len(aligned), len(source))
    kbps = sum(len(p) for p in packets) * 8 / (len(frames) * 0.02) / 1000
    return statistics.median(timings), kbps, log_spectral_distance(source[:size], aligned[:size])


def main() -> int:
    source = voiced()
    rows = [(c, *measure(c, source), chirp_similarity(c)) for c in range(11)]
    best = min(distance for _, _, _, distance, _ in rows)
    chosen = next(
        c for c, _, _, distance, chirp in rows if distance <= best + 0.25 and chirp >= signals.SEGMENT_INTACT
    )
    print(f"Opus at {OpusSettings().bitrate // 1000} kbit/s, 24 kHz mono, FEC on:")
    print(f"{'complexity':>10}  {'us/frame':>8}  {'kbit/s':>6}  {'LSD dB':>6}  {'chirp':>5}")
    for complexity, micros, kbps, distance, chirp in rows:
        mark = "  <- cheapest with intact chirps, within 0.25 dB of the best" if complexity == chosen else ""
        mark += "  (the default)" if complexity == OpusSettings().complexity else ""
        print(f"{complexity:>10}  {micros:>8.1f}  {kbps:>6.1f}  {distance:>6.2f}  {chirp:>5.2f}{mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
