"""Test signals (tones, tone bursts, WAV files) and how to find them again in a recording."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 48_000


def tone(frequency: float, seconds: float, *, amplitude: float = 0.3, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A sine tone as int16 mono samples."""
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * frequency * t) * amplitude * 32767).astype(np.int16)


def tone_bursts(
    frequency: float, *, burst: float = 0.2, gap: float = 0.4, count: int = 5, rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, list[int]]:
    """Bursts of tone separated by digital silence; returns the samples and each burst's first sample."""
    on = tone(frequency, burst, rate=rate)
    # Short fades: a hard edge splatters energy over the whole spectrum.
    fade = int(0.005 * rate)
    ramp = np.linspace(0, 1, fade)
    on = on.astype(np.float64)
    on[:fade] *= ramp
    on[-fade:] *= ramp[::-1]
    off = np.zeros(int(gap * rate))
    pieces, onsets, position = [], [], 0
    for _ in range(count):
        pieces += [off, on]
        onsets.append(position + len(off))
        position += len(off) + len(on)
    pieces.append(off)
    return np.concatenate(pieces).astype(np.int16), onsets


def read_wav_mono(path: Path) -> tuple[np.ndarray, int]:
    """int16 mono samples and the rate of a 16-bit PCM WAV (stereo is mixed down)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV files are supported")
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        if wav.getnchannels() > 1:
            samples = samples.reshape(-1, wav.getnchannels()).mean(axis=1).astype(np.int16)
        return samples, wav.getframerate()


def write_wav_mono(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype(np.int16).tobytes())


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS (-inf for digital silence)."""
    if len(samples) == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return 20 * np.log10(rms / 32768) if rms > 0 else float("-inf")


def tone_level_dbfs(samples: np.ndarray, frequency: float, rate: int = SAMPLE_RATE) -> float:
    """Level of one frequency in dBFS (Goertzel-like projection), robust to other content."""
    if len(samples) == 0:
        return float("-inf")
    x = samples.astype(np.float64) / 32768
    t = np.arange(len(x)) / rate
    amplitude = 2 * abs(np.dot(x, np.exp(-2j * np.pi * frequency * t))) / len(x)
    return 20 * np.log10(amplitude / np.sqrt(2)) if amplitude > 0 else float("-inf")


def dominant_frequency(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    x = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum[1:])) + 1])


def find_onsets(
    samples: np.ndarray, *, threshold_dbfs: float = -30.0, min_gap: float = 0.2, rate: int = SAMPLE_RATE
) -> list[int]:
    """First sample of each stretch louder than ``threshold_dbfs`` (1 ms windows)."""
    window = rate // 1000
    usable = len(samples) // window * window
    if usable == 0:
        return []
    frames = samples[:usable].astype(np.float64).reshape(-1, window)
    loud = np.sqrt(np.mean(frames**2, axis=1)) > 32768 * 10 ** (threshold_dbfs / 20)
    onsets: list[int] = []
    last = -(10**9)
    for index in np.flatnonzero(loud):
        position = int(index) * window
        if position - last > min_gap * rate:
            onsets.append(position)
        last = position
    return onsets
