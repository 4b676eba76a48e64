"""Checks of the analysis itself on synthetic echoes: `.venv/bin/pytest bench`.

The numbers `make bench` prints are only as good as this: a known delay must come out exactly,
a missing echo must be a miss, and another caller's chirp must show up as leakage."""

from __future__ import annotations

import numpy as np
import pytest

from bench.signals import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    ReceivedAudio,
    caller_chirps,
    chirp,
    crosstalk_gain,
    gain_db,
    leakage_outside,
    measure_echoes,
)

START = 1000.0  # an arbitrary monotonic origin


def received(stream: np.ndarray, decoder_delay: float = 0.0) -> ReceivedAudio:
    starts = np.arange(0, len(stream), FRAME_SAMPLES)
    return ReceivedAudio(stream, starts, START + starts / SAMPLE_RATE + decoder_delay)


def with_chirp(length: int, at: int, gain: float = 0.7, noise: float = 20.0) -> np.ndarray:
    template = chirp()
    stream = np.random.default_rng(7).normal(0, noise, length)
    stream[at : at + len(template)] += template * gain
    return np.clip(stream, -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("delay_ms", [21.3, 176.0, 455.5])
def test_a_known_delay_is_measured_to_the_sample(delay_ms: float) -> None:
    sent = START + 0.5
    onset = round((0.5 + delay_ms / 1000) * SAMPLE_RATE)
    echoes = measure_echoes(received(with_chirp(2 * SAMPLE_RATE, onset)), [sent], chirp(), 0.9)
    assert echoes[0].latency_ms == pytest.approx(onset / SAMPLE_RATE * 1000 - 500, abs=0.03)
    assert echoes[0].latency_ms == pytest.approx(delay_ms, abs=0.03)


def test_the_time_a_frame_left_the_decoder_is_part_of_the_delay() -> None:
    onset = round(0.7 * SAMPLE_RATE)
    late = measure_echoes(received(with_chirp(2 * SAMPLE_RATE, onset), 0.040), [START + 0.5], chirp(), 0.9)
    assert late[0].latency_ms == pytest.approx(240.0, abs=0.03)


def test_noise_alone_is_a_miss() -> None:
    stream = np.random.default_rng(3).normal(0, 3000, 2 * SAMPLE_RATE).astype(np.int16)
    assert measure_echoes(received(stream), [START + 0.5], chirp(), 0.9)[0].latency_ms is None


def test_another_callers_chirp_is_leakage_and_silence_is_not() -> None:
    template = chirp()
    own = round(0.7 * SAMPLE_RATE)
    stream = np.zeros(2 * SAMPLE_RATE, dtype=np.int16)
    stream[own : own + len(template)] = template
    audio = received(stream)
    echoes = measure_echoes(audio, [START + 0.5], template, 0.9)
    assert leakage_outside(audio, echoes, len(template), start_sample=0, stop_sample=len(stream)).max_abs == 0

    other = round(1.2 * SAMPLE_RATE)
    stream[other : other + len(template)] = template // 100  # -46 dBFS of someone else
    leak = leakage_outside(received(stream), echoes, len(template), start_sample=0, stop_sample=len(stream))
    assert leak.max_abs > 100


def test_another_callers_chirp_is_heard_at_its_level_and_my_own_is_not() -> None:
    mine, theirs = caller_chirps(2)
    stream = np.zeros(2 * SAMPLE_RATE, dtype=np.int16)
    at = round(0.7 * SAMPLE_RATE)
    stream[at : at + len(mine)] = mine
    assert gain_db(crosstalk_gain(received(stream), theirs, [START + 0.7])) < -40  # own chirp, other band
    stream[at : at + len(theirs)] += theirs // 100
    assert crosstalk_gain(received(stream), theirs, [START + 0.71]) == pytest.approx(0.01, rel=0.05)


def test_the_loud_echo_wins_over_a_faint_copy_that_arrives_first() -> None:
    template = chirp()
    faint, loud = round(0.6 * SAMPLE_RATE), round(0.9 * SAMPLE_RATE)
    stream = np.zeros(2 * SAMPLE_RATE, dtype=np.int16)
    stream[faint : faint + len(template)] = template // 100
    stream[loud : loud + len(template)] = template
    echoes = measure_echoes(received(stream), [START + 0.5], template, 0.9)
    assert echoes[0].onset_sample == loud


def test_a_torn_echo_is_the_callers_own_audio_not_leakage() -> None:
    template = chirp()
    at = round(0.7 * SAMPLE_RATE)
    stream = np.zeros(2 * SAMPLE_RATE, dtype=np.int16)
    stream[at : at + 1920] = template[:1920]  # 40 ms, then a 20 ms gap, then the rest
    stream[at + 2880 : at + 2880 + len(template) - 1920] = template[1920:]
    audio = received(stream)
    echoes = measure_echoes(audio, [START + 0.5], template, 0.9)
    assert not echoes[0].intact
    whole = {"start_sample": 0, "stop_sample": len(stream)}
    assert leakage_outside(audio, echoes, len(template), **whole).max_abs == 0

    stream[at + round(0.3 * SAMPLE_RATE)] = 1000  # anything further away still counts
    assert leakage_outside(received(stream), echoes, len(template), **whole).max_abs == 1000


def test_a_whole_echo_is_intact_even_through_a_codec_that_changes_its_waveform() -> None:
    template = chirp()
    at = round(0.7 * SAMPLE_RATE)
    stream = np.zeros(2 * SAMPLE_RATE, dtype=np.int16)
    # A 32 kbit/s voice codec adds its noise: the waveform correlation drops, the sweep stays in place.
    rng = np.random.default_rng(3)
    noisy = template.astype(np.float64) * 0.8 + rng.normal(0, 3500, len(template))
    stream[at : at + len(template)] = noisy.astype(np.int16)
    (echo,) = measure_echoes(received(stream), [START + 0.5], template, 0.9)
    assert echo.score < 0.97 and echo.intact


def test_a_concealed_frame_inside_the_echo_is_not_intact() -> None:
    template = chirp()
    at = round(0.7 * SAMPLE_RATE)
    stream = np.zeros(2 * SAMPLE_RATE, dtype=np.int16)
    stream[at : at + len(template)] = template
    # Concealment repeats the last 10 ms of pitch where the third 20 ms frame was lost.
    lost = slice(at + 1920, at + 2880)
    stream[lost] = np.tile(template[1440:1920], 2)
    (echo,) = measure_echoes(received(stream), [START + 0.5], template, 0.9)
    assert echo.score > 0.5 and not echo.intact
